import { VirtualTime } from '../../sim/virtual-time.ts';
import { MemoryTokenStorage, TollgateClient, type ClientEvent, type CompareAndSetResult, type FetchLike, type StorageKey, type StorageValues, type TollgateClientOptions, type Versioned } from '../../src/client/index.ts';
import type { TestGateway } from '../helpers/harness.ts';

/** The gateway's default public URL plus the GraphQL path: the `htu` its DPoP check expects. */
export const graphqlUrl = 'http://127.0.0.1:4000/graphql';

/** Returns a fetch that passes each request to the in-process gateway through Fastify's inject. */
export function injectFetch(gateway: TestGateway): FetchLike {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const payload = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const requestHeaders: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      requestHeaders[name] = value;
    });
    const response = await gateway.tollgate.gateway.app.inject({ method: request.method as 'GET' | 'POST', url: `${url.pathname}${url.search}`, headers: requestHeaders, payload });
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : String(value));
    }
    return new Response(new Uint8Array(response.rawPayload), { status: response.statusCode, headers });
  };
}

/** One GraphQL request as the network saw it. */
export interface SentRequest {
  operationName: string | undefined;
  variables: Record<string, unknown>;
  headers: Headers;
  at: number;
}

/** Records every request a fetch sends, in order. */
export function recordingFetch(fetch: FetchLike, time: VirtualTime, sent: SentRequest[]): FetchLike {
  return async (input, init) => {
    const request = new Request(input, init);
    const text = request.body === null ? '' : await request.clone().text();
    const body = (text ? JSON.parse(text) : {}) as { operationName?: string; variables?: Record<string, unknown> };
    sent.push({ operationName: body.operationName, variables: body.variables ?? {}, headers: request.headers, at: time.now() });
    return fetch(request);
  };
}

export interface ClientRig {
  client: TollgateClient;
  events: ClientEvent[];
  storage: MemoryTokenStorage;
}

/** Builds a client on virtual time, with Web Crypto and `fetch` tracked so time waits for them. */
export function createClient(time: VirtualTime, fetch: FetchLike, options: Partial<TollgateClientOptions> & { clockOffsetMs?: number } = {}): ClientRig {
  const events: ClientEvent[] = [];
  const storage = (options.storage as MemoryTokenStorage | undefined) ?? new MemoryTokenStorage();
  const client = new TollgateClient({
    url: graphqlUrl,
    random: seededRandom(7),
    ...options,
    storage,
    fetch: time.trackedFetch(fetch),
    clock: time.deviceClock(options.clockOffsetMs ?? 0),
    timers: time.timers,
    crypto: time.trackedCrypto(globalThis.crypto),
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  return { client, events, storage };
}

/** A small deterministic generator (mulberry32), so jitter is the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let emails = 0;

export function newAccount(): { email: string; password: string; device: { platform: 'IOS'; model: string } } {
  emails += 1;
  return { email: `client-${Date.now().toString(36)}-${emails}@example.com`, password: 'correct horse battery staple', device: { platform: 'IOS', model: 'iPhone15,2' } };
}

export function graphqlRequest(query: string, variables: Record<string, unknown> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) };
}

/**
 * Storage that stops responding once armed, as if the process died: `after-write` lets the write
 * of new tokens land first, `before-write` dies on the attempt.
 */
export class DyingStorage extends MemoryTokenStorage {
  armed: 'after-write' | 'before-write' | undefined;
  dead = false;

  override async read<K extends StorageKey>(key: K): Promise<Versioned<StorageValues[K]> | null> {
    if (this.dead) return new Promise(() => undefined);
    return super.read(key);
  }

  override async compareAndSet<K extends StorageKey>(key: K, expectedVersion: string | null, value: StorageValues[K] | null): Promise<CompareAndSetResult> {
    if (this.dead) return new Promise(() => undefined);
    if (key === 'tokens' && this.armed === 'before-write') {
      this.dead = true;
      return new Promise(() => undefined);
    }
    const result = await super.compareAndSet(key, expectedVersion, value);
    if (key === 'tokens' && this.armed === 'after-write') {
      this.dead = true;
      return new Promise(() => undefined);
    }
    return result;
  }
}

/** A view of another storage's slots, for a second process: it shares state but not the dying. */
export class SharedView extends MemoryTokenStorage {
  constructor(private readonly target: MemoryTokenStorage) {
    super();
  }

  override read<K extends StorageKey>(key: K) {
    return MemoryTokenStorage.prototype.read.call(this.target, key) as Promise<Versioned<StorageValues[K]> | null>;
  }

  override compareAndSet<K extends StorageKey>(key: K, expectedVersion: string | null, value: StorageValues[K] | null) {
    return MemoryTokenStorage.prototype.compareAndSet.call(this.target, key, expectedVersion, value) as Promise<CompareAndSetResult>;
  }
}
