import { defaultRetryPolicy, type RetryPolicy } from './backoff.ts';
import { DpopSigner, loadOrCreateDeviceKey, type PublicJwk } from './dpop.ts';
import { randomId, resolveEnvironment, type Environment, type FetchLike } from './environment.ts';
import { defaultLeaseOptions, type LeaseOptions } from './lease.ts';
import { authResultFrom, containsMutation, operationBody, tokenPairFrom, type OperationName } from './operations.ts';
import { TollgateClientError, type ClientEvent } from './reasons.ts';
import { SessionManager } from './session.ts';
import type { StoredTokens, TokenStorage } from './storage.ts';
import { send, type ReceivedResponse } from './transport.ts';

/** The authentication the gateway requires, from a STEP_UP_REQUIRED error (RFC 9470 semantics). */
export interface StepUpChallenge {
  acrValues: string[];
  /** Maximum age in seconds of the authentication the field accepts. */
  maxAge: number | undefined;
  reason: string | undefined;
  /** 1 for the first prompt; higher after a rejected code. */
  attempt: number;
  /** The error code that rejected the previous attempt's code. */
  previousError: string | undefined;
}

/** Asks the user for a second factor; resolves to null when they cancel. */
export type StepUpHandler = (challenge: StepUpChallenge) => Promise<{ method: 'TOTP' | 'PASSWORD'; code: string } | null>;

export interface DeviceDetails {
  platform: 'IOS' | 'ANDROID' | 'WEB' | 'OTHER';
  model?: string;
  osVersion?: string;
  appVersion?: string;
}

export type SignInResult =
  | { kind: 'signed_in'; userId: string; sessionId: string }
  | { kind: 'challenge'; challengeId: string; methods: string[]; reasons: string[]; expiresAt: number };

export interface TollgateClientOptions extends Partial<Environment> {
  /** The GraphQL endpoint, such as https://api.example.com/graphql. */
  url: string;
  storage: TokenStorage;
  /** The kind of process, such as "app" or "share-extension"; one per kind runs at a time. @default "app" */
  processName?: string;
  /** Register a device key at sign-in, so the gateway can bind the session to it. @default true */
  bindDeviceKey?: boolean;
  /** Refresh on a timer before the access token expires. @default true */
  backgroundRefresh?: boolean;
  onStepUp?: StepUpHandler;
  onEvent?: (event: ClientEvent) => void;
  retry?: Partial<RetryPolicy>;
  /** Retry a mutation after a network failure; set it only when the app's mutations are idempotent. @default false */
  retryMutations?: boolean;
  /** @default 15000 */
  requestTimeoutMs?: number;
  /** Per refresh attempt; below the gateway's grace window (10 s by default), so a retry after a lost response lands inside it. @default 8000 */
  refreshTimeoutMs?: number;
  /** Fractions of the access-token lifetime between which the background refresh fires. @default { earliest: 0.65, latest: 0.85 } */
  refreshWindow?: { earliest: number; latest: number };
  /** @default 10000 */
  minRemainingMs?: number;
  /** @default 30000 */
  foregroundWaitMs?: number;
  lease?: Partial<LeaseOptions>;
}

const maxStepUpPrompts = 3;

/**
 * The app side of Tollgate: keeps the session in the app's secure storage, refreshes it before it
 * expires, signs DPoP proofs with the device key, retries what is safe to retry, and reports the
 * outcomes an app must show. `fetch` can be handed to any GraphQL client.
 */
export class TollgateClient {
  /** A WHATWG `fetch` that authenticates, refreshes, steps up and retries; bound, so it can be passed around. */
  readonly fetch: FetchLike;
  private readonly env: Environment;
  private readonly session: SessionManager;
  private readonly retry: RetryPolicy;
  private stepUpInFlight: Promise<StoredTokens | null> | undefined;

  constructor(private readonly options: TollgateClientOptions) {
    this.env = resolveEnvironment(options);
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    this.session = new SessionManager(
      {
        url: options.url,
        storage: options.storage,
        processName: options.processName ?? 'app',
        launchId: randomId(this.env.crypto),
        retry: this.retry,
        requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
        refreshTimeoutMs: options.refreshTimeoutMs ?? 8_000,
        refreshWindow: options.refreshWindow ?? { earliest: 0.65, latest: 0.85 },
        minRemainingMs: options.minRemainingMs ?? 10_000,
        foregroundWaitMs: options.foregroundWaitMs ?? 30_000,
        backgroundRefresh: options.backgroundRefresh ?? true,
        lease: { ...defaultLeaseOptions, ...options.lease },
      },
      this.env,
      (event) => this.emit(event),
    );
    this.fetch = (input, init) => this.request(input, init);
  }

  /** Loads the stored session and plans its background refresh; resolves to whether one exists. */
  async start(): Promise<boolean> {
    return (await this.session.load()) !== null;
  }

  /** Stops background work. The stored session stays for the next launch. */
  close(): void {
    this.session.close();
  }

  /** Server clock minus device clock as last measured, in milliseconds. */
  get clockOffsetMs(): number {
    return this.session.serverClock.offsetMs;
  }

  /** Refreshes now, or joins the refresh in flight; resolves to false when the session has ended. */
  async refresh(): Promise<boolean> {
    await this.session.load();
    return (await this.session.refresh()) !== null;
  }

  signUp(input: { email: string; password: string; displayName?: string; device: DeviceDetails }): Promise<SignInResult> {
    return this.signIn('signUp', input);
  }

  login(input: { email: string; password: string; device: DeviceDetails }): Promise<SignInResult> {
    return this.signIn('login', input);
  }

  /** Completes the second-factor challenge a `login` returned. */
  completeLogin(input: { challengeId: string; method: 'TOTP' | 'PASSWORD'; code: string }): Promise<SignInResult> {
    return this.signIn('completeLogin', input);
  }

  /** Ends the session on the server when it is reachable, and always on this device. */
  async signOut(): Promise<void> {
    const tokens = await this.session.load();
    if (tokens) {
      await this.sendOperation('logout', {}, tokens, { ...this.retry, maxAttempts: 1 }).catch(() => undefined);
    }
    await this.session.signOut();
  }

  private async signIn(operation: 'signUp' | 'login' | 'completeLogin', input: Record<string, unknown>): Promise<SignInResult> {
    const variables = 'device' in input ? { ...input, device: await this.deviceInput(input.device as DeviceDetails) } : input;
    const received = await this.sendOperation(operation, { input: variables }, null, this.retry);
    const result = authResultFrom(received.body, operation);
    if (!result) throw this.failure(operation, received);

    if (result.__typename === 'StepUpChallenge') {
      return { kind: 'challenge', challengeId: result.challengeId, methods: result.methods, reasons: result.reasons, expiresAt: result.expiresAt };
    }
    await this.session.replace(result.tokens);
    return { kind: 'signed_in', userId: result.user.id, sessionId: result.session.id };
  }

  private async deviceInput(device: DeviceDetails): Promise<DeviceDetails & { publicKey?: PublicJwk }> {
    if (this.options.bindDeviceKey === false) return device;
    const keyPair = await loadOrCreateDeviceKey(this.options.storage, this.env.crypto);
    const signer = await DpopSigner.create(keyPair, this.env.crypto);
    this.session.proofs.use(signer);
    return { ...device, publicKey: signer.publicJwk };
  }

  /** Sends one of the client's own operations; mutations are not retried after a network failure. */
  private sendOperation(name: OperationName, variables: Record<string, unknown>, tokens: StoredTokens | null, policy: RetryPolicy): Promise<ReceivedResponse> {
    const url = this.options.url;
    return send(this.session.transport, {
      operation: 'request',
      policy,
      retryNetworkFailures: false,
      timeoutMs: this.options.requestTimeoutMs ?? 15_000,
      readBody: true,
      build: async () => {
        const headers = new Headers({ 'content-type': 'application/json' });
        if (tokens) {
          await this.session.authorize(headers, 'POST', url, tokens);
        } else {
          const proof = await this.session.proofs.sign('POST', url);
          if (proof) headers.set('dpop', proof);
        }
        return new Request(url, { method: 'POST', headers, body: operationBody(name, variables) });
      },
    });
  }

  private failure(operation: string, received: ReceivedResponse): TollgateClientError {
    const message = received.body?.errors?.[0]?.message ?? `HTTP ${received.status}`;
    return new TollgateClientError('request_failed', `${operation} failed: ${message}`, received.code);
  }

  /**
   * Sends an app request with the session's credentials and acts on a whole-operation refusal.
   * TOKEN_EXPIRED, TOKEN_INVALID and TOKEN_REVOKED refresh once and retry, and a refresh the server
   * rejects ends the session with its reason. STEP_UP_REQUIRED calls the app's step-up handler and
   * retries with the stepped-up token. DEVICE_SUSPENDED reports device review. Any other response,
   * partial results included, goes to the app unchanged.
   */
  private async request(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const original = new Request(input, init);
    const body = original.body === null ? undefined : await original.arrayBuffer();
    const retryNetworkFailures = this.options.retryMutations === true || !containsMutation(body && new TextDecoder().decode(body));
    const signal = original.signal;

    let tokens = await this.session.tokensForRequest(signal);
    let refreshed = false;
    let steppedUp = false;
    for (;;) {
      const current = tokens;
      const received = await send(this.session.transport, {
        operation: 'request',
        policy: this.retry,
        retryNetworkFailures,
        timeoutMs: this.options.requestTimeoutMs ?? 15_000,
        signal,
        build: () => this.appRequest(original, body, current),
      });
      if (received.status < 400 || received.code === undefined || current === null) return received.response;

      switch (received.code) {
        case 'TOKEN_EXPIRED':
        case 'TOKEN_INVALID':
        case 'TOKEN_REVOKED':
          if (refreshed) return received.response;
          refreshed = true;
          tokens = await this.session.awaitRefresh(current.accessToken, signal);
          if (tokens === null) return received.response;
          continue;
        case 'STEP_UP_REQUIRED':
          if (steppedUp) return received.response;
          steppedUp = true;
          tokens = await this.stepUp(received.extensions);
          if (tokens === null) return received.response;
          continue;
        case 'DEVICE_SUSPENDED':
          this.emit({ type: 'device_review', reason: 'device_suspended' });
          return received.response;
        default:
          return received.response;
      }
    }
  }

  private async appRequest(original: Request, body: ArrayBuffer | undefined, tokens: StoredTokens | null): Promise<Request> {
    const headers = new Headers(original.headers);
    if (tokens) await this.session.authorize(headers, original.method, original.url, tokens);
    return new Request(original.url, { method: original.method, headers, body, redirect: original.redirect });
  }

  /** Runs one step-up at a time: concurrent requests rejected for it wait for the same prompt. */
  private stepUp(extensions: Record<string, unknown> | undefined): Promise<StoredTokens | null> {
    this.stepUpInFlight ??= this.promptStepUp(extensions).finally(() => {
      this.stepUpInFlight = undefined;
    });
    return this.stepUpInFlight;
  }

  private async promptStepUp(extensions: Record<string, unknown> | undefined): Promise<StoredTokens | null> {
    const handler = this.options.onStepUp;
    const challenge = {
      acrValues: Array.isArray(extensions?.acrValues) ? extensions.acrValues.filter((value): value is string => typeof value === 'string') : [],
      maxAge: typeof extensions?.maxAge === 'number' ? extensions.maxAge : undefined,
      reason: typeof extensions?.reason === 'string' ? extensions.reason : undefined,
    };

    let previousError: string | undefined;
    for (let attempt = 1; handler && attempt <= maxStepUpPrompts; attempt += 1) {
      const answer = await handler({ ...challenge, attempt, previousError });
      if (!answer) break;

      const outcome = await this.submitStepUp(answer);
      if (typeof outcome !== 'string') {
        this.emit({ type: 'step_up', outcome: 'completed' });
        return outcome;
      }
      previousError = outcome;
    }
    this.emit({ type: 'step_up', outcome: previousError === undefined ? 'cancelled' : 'failed' });
    return null;
  }

  /** Sends `stepUp` holding the refresh lease, and stores the pair it returns; else returns the error code. */
  private async submitStepUp(answer: { method: string; code: string }): Promise<StoredTokens | string> {
    const tokens = await this.session.tokensForRequest();
    if (!tokens) return 'NOT_SIGNED_IN';

    return this.session.exclusive(async () => {
      const received = await this.sendOperation('stepUp', { input: answer }, tokens, this.retry);
      const pair = tokenPairFrom(received.body, 'stepUp');
      if (!pair) return received.code ?? `HTTP_${received.status}`;
      return this.session.replace(pair);
    });
  }

  private emit(event: ClientEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // An app's event handler must not break the session.
    }
  }
}
