import { parseRetryAfter, retryAfterFromExtensions, retryDelay, type RetryPolicy } from './backoff.ts';
import { sleep, type Environment } from './environment.ts';
import { TollgateClientError, type ClientEvent, type RetryCause } from './reasons.ts';
import type { ServerClock } from './server-time.ts';

/** A GraphQL error as it arrives over HTTP. */
export interface GraphQLErrorBody {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown>;
}

export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: GraphQLErrorBody[];
}

/** A response read to the end, so it can be inspected and still handed to the app. */
export interface ReceivedResponse {
  response: Response;
  status: number;
  /** The parsed JSON body, when it was JSON. */
  body: GraphQLBody | undefined;
  /** `extensions.code` of the first error. */
  code: string | undefined;
  extensions: Record<string, unknown> | undefined;
}

export interface SendOptions {
  operation: 'refresh' | 'request';
  policy: RetryPolicy;
  /** Retry network failures, timeouts, 503 and 429 until success instead of `policy.maxAttempts` times. */
  untilSuccess?: boolean;
  /** Whether a network failure or timeout may be retried: false for a mutation the server may have run. */
  retryNetworkFailures: boolean;
  timeoutMs: number;
  /** Parse the JSON body of successful responses too; error responses are always parsed. */
  readBody?: boolean;
  signal?: AbortSignal | undefined;
  /** Builds the request for one attempt; called again per attempt so each gets a fresh DPoP proof. */
  build(): Promise<Request>;
}

export interface TransportDeps {
  env: Environment;
  serverClock: ServerClock;
  emit(event: ClientEvent): void;
  /** Receives each `DPoP-Nonce` response header (RFC 9449 §8). */
  onNonce(nonce: string): void;
}

const bodylessStatuses = new Set([101, 103, 204, 205, 304]);

/**
 * Sends a request with retries. Network failures and timeouts (when allowed), 503 and 429 are retried
 * with exponential backoff and full jitter, waiting at least the server's `Retry-After` or
 * `extensions.retryAfterSeconds`. A rejected DPoP proof is retried once at once with a fresh proof.
 */
export async function send(deps: TransportDeps, options: SendOptions): Promise<ReceivedResponse> {
  let dpopRetried = false;

  for (let attempt = 0; ; attempt += 1) {
    const lastAttempt = !options.untilSuccess && attempt + 1 >= options.policy.maxAttempts;
    const outcome = await attemptOnce(deps, options);

    if ('failure' in outcome) {
      if (!options.retryNetworkFailures || lastAttempt) {
        throw new TollgateClientError('network', `The request to ${options.operation === 'refresh' ? 'refresh the session' : 'the API'} failed after ${attempt + 1} attempts: ${outcome.failure}.`, undefined, { cause: outcome.error });
      }
      await pause(deps, options, attempt, outcome.failure, undefined);
      continue;
    }

    const received = outcome.received;
    if (received.code === 'DPOP_PROOF_INVALID' && !dpopRetried) {
      // A proof is rejected for a stale iat or a new nonce. The next proof fixes both, because it
      // uses the clock offset and nonce this response just updated.
      dpopRetried = true;
      deps.emit({ type: 'retry', operation: options.operation, cause: 'dpop_proof_rejected', attempt: attempt + 1, delayMs: 0 });
      continue;
    }

    const cause = retryCauseOf(received);
    if (cause === undefined || lastAttempt) return received;
    const serverWait = parseRetryAfter(received.response.headers.get('retry-after'), received.response.headers.get('date')) ?? retryAfterFromExtensions(received.extensions);
    await pause(deps, options, attempt, cause, serverWait);
  }
}

async function pause(deps: TransportDeps, options: SendOptions, attempt: number, cause: RetryCause, serverWait: number | undefined): Promise<void> {
  const delayMs = retryDelay(options.policy, attempt, deps.env.random, serverWait);
  deps.emit({ type: 'retry', operation: options.operation, cause, attempt: attempt + 1, delayMs });
  await sleep(deps.env.timers, delayMs, options.signal);
}

function retryCauseOf(received: ReceivedResponse): RetryCause | undefined {
  if (received.status === 503) return 'service_unavailable';
  if (received.status === 429) return 'rate_limited';
  return undefined;
}

type AttemptOutcome = { received: ReceivedResponse } | { failure: 'network' | 'timeout'; error: unknown };

async function attemptOnce(deps: TransportDeps, options: SendOptions): Promise<AttemptOutcome> {
  const { env } = deps;
  const request = await options.build();
  const controller = new AbortController();
  let timedOut = false;
  const timer = env.timers.setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`no response within ${options.timeoutMs} ms`));
  }, options.timeoutMs);
  const forwardAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forwardAbort, { once: true });

  const sentAt = env.clock.now();
  try {
    const response = await env.fetch(request, { signal: controller.signal });
    const bytes = await response.arrayBuffer();
    const receivedAt = env.clock.now();
    deps.serverClock.observe(response.headers.get('date'), sentAt, receivedAt);
    const nonce = response.headers.get('dpop-nonce');
    if (nonce) deps.onNonce(nonce);
    return { received: receivedFrom(response, bytes, options.readBody === true || !response.ok) };
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    return { failure: timedOut ? 'timeout' : 'network', error };
  } finally {
    env.timers.clearTimeout(timer);
    options.signal?.removeEventListener('abort', forwardAbort);
  }
}

function receivedFrom(response: Response, bytes: ArrayBuffer, readBody: boolean): ReceivedResponse {
  const body = readBody ? parseJson(response.headers.get('content-type'), bytes) : undefined;
  const first = body?.errors?.[0];
  const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : undefined;
  const copy = new Response(bodylessStatuses.has(response.status) ? null : bytes, { status: response.status, statusText: response.statusText, headers: response.headers });
  return { response: copy, status: response.status, body, code, extensions: first?.extensions };
}

function parseJson(contentType: string | null, bytes: ArrayBuffer): GraphQLBody | undefined {
  if (!contentType || !/json/i.test(contentType) || bytes.byteLength === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return parsed !== null && typeof parsed === 'object' ? (parsed as GraphQLBody) : undefined;
  } catch {
    return undefined;
  }
}
