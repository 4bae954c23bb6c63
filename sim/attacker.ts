import { loadOrCreateDeviceKey, MemoryTokenStorage, overwrite, TollgateClient, type StoredTokens } from '../src/client/index.ts';
import { meQuery, type FleetContext } from './device.ts';
import type { TheftRecord } from './metrics.ts';
import type { Random } from './random.ts';

/** Sign-out reasons that show the gateway recognised the copied tokens. */
const detectionReasons = new Set(['refresh_token_reused', 'device_mismatch', 'session_revoked']);

/**
 * A device that received a victim's copied tokens. It has a key of its own (the victim's private
 * key is not extractable) and, after a delay, refreshes with the copied refresh token and keeps using
 * whatever the gateway gives it, until the gateway refuses it.
 */
export class Attacker {
  private readonly storage = new MemoryTokenStorage();
  private client: TollgateClient | undefined;
  private requestTimer: unknown;

  constructor(
    private readonly context: FleetContext,
    private readonly random: Random,
    readonly record: TheftRecord,
  ) {}

  async start(tokens: StoredTokens, delayMs: number): Promise<void> {
    await loadOrCreateDeviceKey(this.storage, this.context.crypto);
    await overwrite(this.storage, 'tokens', tokens);
    this.client = new TollgateClient({
      url: this.context.url,
      storage: this.storage,
      processName: 'attacker',
      fetch: this.context.time.trackedFetch(this.context.fetch),
      clock: this.context.time.deviceClock(0),
      timers: this.context.time.timers,
      random: this.random.next,
      crypto: this.context.crypto,
      onEvent: (event) => {
        if (event.type !== 'signed_out') return;
        if (detectionReasons.has(event.reason)) this.detected(`attacker:${event.reason}`);
        this.stop();
      },
    });
    this.context.time.timers.setTimeout(() => void this.attack(), delayMs);
  }

  /** Records how the theft was detected, once. */
  detected(by: string): void {
    this.record.detectedBy ??= by;
  }

  stop(): void {
    this.client?.close();
    this.client = undefined;
    if (this.requestTimer !== undefined) this.context.time.timers.clearTimeout(this.requestTimer);
  }

  private async attack(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const refreshed = await client.refresh().catch(() => false);
    if (refreshed) this.useSession();
  }

  private useSession(): void {
    this.requestTimer = this.context.time.timers.setTimeout(async () => {
      const client = this.client;
      if (!client) return;
      try {
        const response = await client.fetch(this.context.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: meQuery });
        const body = (await response.json()) as { data?: { me?: unknown } };
        if (response.status === 200 && body.data?.me) this.record.attackerRequestsServed += 1;
      } catch {
        // The attacker's own network failures are of no interest.
      }
      if (this.client) this.useSession();
    }, this.random.exponential(10) * 1000);
  }
}
