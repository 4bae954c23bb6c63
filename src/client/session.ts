import type { RetryPolicy } from './backoff.ts';
import { DeviceProofs } from './dpop.ts';
import { sleep, type Environment } from './environment.ts';
import { RefreshLeaseLock, type LeaseOptions } from './lease.ts';
import { RefreshScheduler } from './schedule.ts';
import { operationBody, storedTokensOf, tokenPairFrom, type TokenPairData } from './operations.ts';
import { signOutReasonByCode, TollgateClientError, type ClientEvent, type SignOutReason } from './reasons.ts';
import { ServerClock } from './server-time.ts';
import { overwrite, type StoredTokens, type TokenStorage, type Versioned } from './storage.ts';
import { send, type TransportDeps } from './transport.ts';

export interface SessionOptions {
  url: string;
  storage: TokenStorage;
  processName: string;
  launchId: string;
  retry: RetryPolicy;
  requestTimeoutMs: number;
  /** Per refresh attempt; shorter than the grace window, so a retry after a lost response lands inside it. */
  refreshTimeoutMs: number;
  /** The background refresh fires at a uniformly drawn fraction of the access token's lifetime. */
  refreshWindow: { earliest: number; latest: number };
  /** A request refreshes first when less than this, or a tenth of the lifetime if smaller, remains. */
  minRemainingMs: number;
  /** How long a request waits for a refresh that is retrying before it fails. */
  foregroundWaitMs: number;
  backgroundRefresh: boolean;
  lease: LeaseOptions;
}

/** Raised inside a refresh attempt when another process took the lease while this one waited. */
class LeaseLost extends Error {}

/**
 * The session's tokens and their refresh. One refresh runs at a time per process (callers share the
 * promise in flight) and per store (the refresh lease). The refresh always sends the refresh token
 * read from the store after taking the lease. It writes the new pair to the store before anything
 * uses it, so a process killed at any point leaves a store another launch can continue from.
 */
export class SessionManager {
  readonly serverClock: ServerClock;
  /** undefined until read from the store; null when signed out. */
  private tokens: Versioned<StoredTokens> | null | undefined;
  private loading: Promise<StoredTokens | null> | undefined;
  private inflight: Promise<StoredTokens | null> | undefined;
  readonly proofs: DeviceProofs;
  private turn: Promise<void> = Promise.resolve();
  private readonly closing = new AbortController();
  private readonly lease: RefreshLeaseLock;
  private readonly scheduler: RefreshScheduler;
  readonly transport: TransportDeps;

  constructor(
    private readonly options: SessionOptions,
    private readonly env: Environment,
    private readonly emit: (event: ClientEvent) => void,
  ) {
    this.serverClock = new ServerClock(env.clock);
    this.lease = new RefreshLeaseLock(options.storage, { process: options.processName, launchId: options.launchId }, env, options.lease);
    this.proofs = new DeviceProofs(options.storage, env.crypto, () => this.serverClock.now());
    this.transport = { env, serverClock: this.serverClock, emit, onNonce: (nonce) => (this.proofs.nonce = nonce) };
    this.scheduler = new RefreshScheduler(env, { enabled: options.backgroundRefresh, refreshWindow: options.refreshWindow, retry: options.retry }, {
      serverNow: () => this.serverClock.now(),
      current: () => this.tokens?.value,
      refresh: () => this.refresh(),
      closed: () => this.closed,
    });
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Reads the session from the store once; later calls return what is in memory. */
  async load(): Promise<StoredTokens | null> {
    if (this.tokens !== undefined) return this.tokens?.value ?? null;
    this.loading ??= this.options.storage.read('tokens').then((stored) => {
      if (this.tokens === undefined) this.setTokens(stored);
      return this.tokens?.value ?? null;
    });
    return this.loading;
  }

  /** Tokens fit for a request: refreshes first when the access token is about to expire. */
  async tokensForRequest(signal?: AbortSignal): Promise<StoredTokens | null> {
    const tokens = await this.load();
    if (!tokens || !this.expiresSoon(tokens)) return tokens;
    return this.awaitRefresh(undefined, signal);
  }

  /**
   * Refreshes because the server rejected `rejectedAccessToken`, unless a newer token is already
   * at hand. Waits at most `foregroundWaitMs` for a refresh that keeps failing on the network.
   */
  async awaitRefresh(rejectedAccessToken: string | undefined, signal?: AbortSignal): Promise<StoredTokens | null> {
    const current = this.tokens?.value;
    if (rejectedAccessToken !== undefined && current && current.accessToken !== rejectedAccessToken && !this.expiresSoon(current)) return current;

    const deadline = new AbortController();
    const abortDeadline = () => deadline.abort(signal?.reason);
    signal?.addEventListener('abort', abortDeadline, { once: true });
    const timeout = sleep(this.env.timers, this.options.foregroundWaitMs, deadline.signal).then(() => {
      throw new TollgateClientError('network', `The session refresh did not complete within ${this.options.foregroundWaitMs} ms; it continues in the background.`);
    });
    try {
      return await Promise.race([this.refresh(rejectedAccessToken), timeout]);
    } finally {
      deadline.abort();
      signal?.removeEventListener('abort', abortDeadline);
      timeout.catch(() => undefined);
    }
  }

  /** Starts a refresh, or joins the one in flight. Resolves to null when the session ended. */
  refresh(rejectedAccessToken?: string): Promise<StoredTokens | null> {
    if (this.inflight) return this.inflight;
    const run = this.runRefresh(rejectedAccessToken).finally(() => {
      this.inflight = undefined;
    });
    this.inflight = run;
    return run;
  }

  /**
   * Runs `work` holding the refresh lease: exclusive against other processes through the store, and
   * against other work of this process (a step-up during a refresh) through a promise chain.
   */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.turn;
    let done!: () => void;
    this.turn = new Promise((resolve) => (done = resolve));
    await previous;
    try {
      await this.lease.acquire(this.closing.signal);
      try {
        return await work();
      } finally {
        await this.lease.release();
      }
    } finally {
      done();
    }
  }

  private runRefresh(rejectedAccessToken: string | undefined): Promise<StoredTokens | null> {
    return this.exclusive(() => this.refreshHoldingLease(rejectedAccessToken));
  }

  private async refreshHoldingLease(rejectedAccessToken: string | undefined): Promise<StoredTokens | null> {
    for (;;) {
      // Re-read after taking the lease: another process may have refreshed or signed out meanwhile.
      const stored = await this.options.storage.read('tokens');
      if (!stored) {
        this.forget('signed_out');
        return null;
      }
      if (this.refreshedElsewhere(stored.value, rejectedAccessToken)) {
        this.setTokens(stored);
        return stored.value;
      }
      try {
        return await this.exchange(stored);
      } catch (error) {
        if (!(error instanceof LeaseLost)) throw error;
        await this.lease.acquire(this.closing.signal);
      }
    }
  }

  /** Returns whether the stored pair is newer than the one in memory and not yet due for its own refresh. */
  private refreshedElsewhere(stored: StoredTokens, rejectedAccessToken: string | undefined): boolean {
    if (stored.accessToken === rejectedAccessToken) return false;
    if (stored.refreshToken === this.tokens?.value.refreshToken) return false;
    const lifetime = stored.accessTokenExpiresAt - stored.receivedAt;
    return this.serverClock.now() < stored.receivedAt + lifetime * this.options.refreshWindow.earliest;
  }

  private async exchange(stored: Versioned<StoredTokens>): Promise<StoredTokens | null> {
    const refreshToken = stored.value.refreshToken;
    const received = await send(this.transport, {
      operation: 'refresh',
      policy: this.options.retry,
      untilSuccess: true,
      retryNetworkFailures: true,
      timeoutMs: this.options.refreshTimeoutMs,
      readBody: true,
      signal: this.closing.signal,
      build: async () => {
        // Renewing before every attempt keeps the other process from sending this token meanwhile.
        if (!(await this.lease.renew())) throw new LeaseLost();
        return this.refreshRequest(refreshToken);
      },
    });

    const pair = tokenPairFrom(received.body, 'refreshSession');
    if (pair) return this.commit(stored.version, pair);

    const reason = received.code === undefined ? undefined : signOutReasonByCode[received.code];
    if (reason) return this.endSession(stored, reason);
    if (received.code === 'DEVICE_SUSPENDED') {
      this.suspend();
      throw new TollgateClientError('device_suspended', 'Token issuance to this device is suspended pending verification.', received.code);
    }
    throw new TollgateClientError('unexpected_response', `refreshSession failed with HTTP ${received.status}${received.code ? ` and ${received.code}` : ''}.`, received.code);
  }

  private async refreshRequest(refreshToken: string): Promise<Request> {
    const headers = new Headers({ 'content-type': 'application/json' });
    // RFC 9449 §5: the refresh request proves possession of the device key; it carries no ath.
    const proof = await this.proofs.sign('POST', this.options.url);
    if (proof) headers.set('dpop', proof);
    return new Request(this.options.url, { method: 'POST', headers, body: operationBody('refreshSession', { refreshToken }) });
  }

  /**
   * Writes a new pair to the store, replacing version `expectedVersion`, before anything uses it.
   * Only a sign-in or sign-out in another process writes the slot without the lease; their result wins.
   */
  async commit(expectedVersion: string | null, pair: TokenPairData): Promise<StoredTokens | null> {
    const tokens = storedTokensOf(pair, this.serverClock.now(), this.serverClock.offsetMs);
    const result = await this.options.storage.compareAndSet('tokens', expectedVersion, tokens);
    if (!result.written) {
      const current = await this.options.storage.read('tokens');
      if (!current) {
        this.forget('signed_out');
        return null;
      }
      this.setTokens(current);
      return current.value;
    }

    this.scheduler.resume();
    this.setTokens({ value: tokens, version: result.version as string });
    this.emit({ type: 'tokens_refreshed', accessTokenExpiresAt: tokens.accessTokenExpiresAt });
    return tokens;
  }

  /** Ends the session the server refused, unless a new sign-in replaced it in the store meanwhile. */
  private async endSession(stored: Versioned<StoredTokens>, reason: SignOutReason): Promise<StoredTokens | null> {
    const result = await this.options.storage.compareAndSet('tokens', stored.version, null);
    if (!result.written) {
      const current = await this.options.storage.read('tokens');
      if (current && current.value.refreshToken !== stored.value.refreshToken) {
        this.setTokens(current);
        return current.value;
      }
    }
    this.forget(reason);
    return null;
  }

  /** Writes the pair of a sign-in or step-up whatever the store held, then uses it. */
  async replace(pair: TokenPairData): Promise<StoredTokens> {
    const tokens = storedTokensOf(pair, this.serverClock.now(), this.serverClock.offsetMs);
    const version = await overwrite(this.options.storage, 'tokens', tokens);
    this.scheduler.resume();
    this.setTokens({ value: tokens, version: version as string });
    return tokens;
  }

  /** Clears the session from memory and the store. */
  async signOut(): Promise<void> {
    const current = await this.options.storage.read('tokens');
    if (current) await this.options.storage.compareAndSet('tokens', current.version, null);
    this.forget('signed_out');
  }

  /** Sets `Authorization`, and `DPoP` with `ath` for a key-bound token (RFC 9449 §7.1). */
  async authorize(headers: Headers, method: string, url: string, tokens: StoredTokens): Promise<void> {
    headers.set('authorization', `${tokens.tokenType} ${tokens.accessToken}`);
    if (tokens.tokenType !== 'DPoP') return;

    const proof = await this.proofs.sign(method, url, tokens.accessToken);
    if (!proof) throw new TollgateClientError('device_mismatch', 'The session is bound to a device key that is no longer in storage: sign in again.');
    headers.set('dpop', proof);
  }

  private expiresSoon(tokens: StoredTokens): boolean {
    const lifetime = tokens.accessTokenExpiresAt - tokens.receivedAt;
    const margin = Math.max(1_000, Math.min(this.options.minRemainingMs, lifetime / 10));
    return tokens.accessTokenExpiresAt - this.serverClock.now() < margin;
  }

  private setTokens(stored: Versioned<StoredTokens> | null): void {
    this.tokens = stored;
    if (!stored) return;
    this.serverClock.seed(stored.value.clockOffsetMs);
    this.scheduler.plan(stored.value);
  }

  private forget(reason: SignOutReason): void {
    const hadSession = Boolean(this.tokens);
    this.tokens = null;
    this.scheduler.cancel();
    if (hadSession) this.emit({ type: 'signed_out', reason });
  }

  private suspend(): void {
    this.scheduler.pause();
    this.emit({ type: 'device_review', reason: 'device_suspended' });
  }

  /** Stops background refresh and abandons a refresh in flight; the store keeps the session. */
  close(): void {
    this.closing.abort(new TollgateClientError('request_failed', 'The client was closed.'));
    this.scheduler.cancel();
  }
}
