/**
 * The platform services the client uses. Each part is injectable, so tests and the fleet simulator
 * can run the client on virtual time with a scripted network.
 */

/** A `fetch` with the signature of the WHATWG Fetch standard, as GraphQL clients accept it. */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** The device's wall clock in epoch milliseconds. It may be hours off the server's. */
export interface DeviceClock {
  now(): number;
}

/** One-shot timers; a handle from `setTimeout` is only ever passed back to `clearTimeout`. */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A uniform random number in [0, 1), used for jitter only: nothing secret is drawn from it. */
export type RandomSource = () => number;

/** The Web Crypto API subset the client uses for device keys, DPoP proofs and unguessable ids. */
export interface CryptoProvider {
  subtle: SubtleCrypto;
  getRandomValues<T extends ArrayBufferView>(array: T): T;
}

export interface Environment {
  fetch: FetchLike;
  clock: DeviceClock;
  timers: Timers;
  random: RandomSource;
  crypto: CryptoProvider;
}

export const systemClock: DeviceClock = { now: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Fills in the platform defaults: global `fetch`, `Date.now`, global timers, `Math.random`, `crypto`. */
export function resolveEnvironment(overrides: Partial<Environment> = {}): Environment {
  const platformCrypto = globalThis.crypto as CryptoProvider | undefined;
  const crypto = overrides.crypto ?? platformCrypto;
  if (!crypto?.subtle) throw new Error('Web Crypto is unavailable: pass options.crypto (Node.js 20 and current mobile runtimes provide globalThis.crypto).');

  return {
    fetch: overrides.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    clock: overrides.clock ?? systemClock,
    timers: overrides.timers ?? systemTimers,
    random: overrides.random ?? Math.random,
    crypto,
  };
}

/** Waits `delayMs` on the injected timers; rejects with the signal's reason when it is aborted first. */
export function sleep(timers: Timers, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timers.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, delayMs));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Returns `bytes` random bytes as unpadded base64url (RFC 4648 §5). */
export function randomId(crypto: CryptoProvider, bytes = 16): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
