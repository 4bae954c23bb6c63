import { backoffDelay, type RetryPolicy } from './backoff.ts';
import type { Environment } from './environment.ts';
import type { StoredTokens } from './storage.ts';

/** setTimeout's largest delay; a later refresh is planned again when this one fires. */
const maxTimerDelayMs = 2 ** 31 - 1;

export interface SchedulerOptions {
  enabled: boolean;
  /** The refresh fires at a uniformly drawn fraction of the access token's lifetime. */
  refreshWindow: { earliest: number; latest: number };
  retry: RetryPolicy;
}

export interface ScheduledSession {
  /** The server's current time as the device estimates it. */
  serverNow(): number;
  current(): StoredTokens | undefined;
  refresh(): Promise<unknown>;
  closed(): boolean;
}

/**
 * Plans the background refresh at a random point between `earliest` and `latest` of the access
 * token's lifetime, measured on the server's clock. A fleet whose tokens expire together thus
 * spreads its refreshes over the window instead of sending them in one second.
 */
export class RefreshScheduler {
  private timer: unknown;
  private failures = 0;
  private paused = false;

  constructor(
    private readonly env: Environment,
    private readonly options: SchedulerOptions,
    private readonly session: ScheduledSession,
  ) {}

  plan(tokens: StoredTokens): void {
    this.cancel();
    if (!this.options.enabled || this.paused || this.session.closed()) return;

    const { earliest, latest } = this.options.refreshWindow;
    const lifetime = Math.max(0, tokens.accessTokenExpiresAt - tokens.receivedAt);
    const refreshAt = tokens.receivedAt + lifetime * (earliest + this.env.random() * (latest - earliest));
    this.start(refreshAt - this.session.serverNow());
  }

  /** Stops planning until `resume`, as while token issuance to the device is suspended. */
  pause(): void {
    this.paused = true;
    this.cancel();
  }

  resume(): void {
    this.paused = false;
  }

  cancel(): void {
    if (this.timer === undefined) return;
    this.env.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private start(delayMs: number): void {
    this.timer = this.env.timers.setTimeout(() => this.fire(), Math.min(maxTimerDelayMs, Math.max(0, delayMs)));
  }

  private fire(): void {
    this.timer = undefined;
    const planned = this.session.current();
    if (planned && planned.accessTokenExpiresAt - this.session.serverNow() > maxTimerDelayMs) {
      this.plan(planned);
      return;
    }

    this.session.refresh().then(
      () => {
        this.failures = 0;
      },
      () => {
        if (this.session.closed() || this.paused) return;
        // Network failures are retried inside the refresh, so what arrives here is a response the
        // client did not expect. It is worth another try after a growing pause.
        const delay = Math.max(1_000, backoffDelay(this.options.retry, this.failures, this.env.random));
        this.failures += 1;
        this.start(delay);
      },
    );
  }
}
