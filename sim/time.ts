import type { CryptoProvider, DeviceClock, FetchLike, Timers } from '../src/client/index.ts';
import type { Clock } from '../src/clock.ts';

/**
 * The time a fleet runs on: `VirtualTime` when the simulator drives the gateway's clock too, or
 * `RealTime` against a gateway that runs on its own clock.
 */
export interface SimulationTime {
  now(): number;
  readonly timers: Timers;
  readonly gatewayClock: Clock;
  deviceClock(offsetMs: number): DeviceClock;
  /** Runs `work` so that time waits for it when time is virtual. */
  track<T>(work: () => Promise<T>): Promise<T>;
  trackedCrypto(crypto: CryptoProvider): CryptoProvider;
  trackedFetch(fetch: FetchLike): FetchLike;
  /** Lets timers fire until `until`. */
  runUntil(until: number, quantumMs?: number): Promise<void>;
  /** Resolves with `work`'s result, moving time forward as long as it is pending. */
  drive<T>(work: Promise<T>): Promise<T>;
}

/** Wall-clock time with the platform's timers. */
export class RealTime implements SimulationTime {
  readonly timers: Timers = {
    setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };

  readonly gatewayClock: Clock = { now: () => new Date() };

  now(): number {
    return Date.now();
  }

  deviceClock(offsetMs: number): DeviceClock {
    return { now: () => Date.now() + offsetMs };
  }

  track<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  trackedCrypto(crypto: CryptoProvider): CryptoProvider {
    return crypto;
  }

  trackedFetch(fetch: FetchLike): FetchLike {
    return fetch;
  }

  async runUntil(until: number): Promise<void> {
    const wait = until - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  drive<T>(work: Promise<T>): Promise<T> {
    return work;
  }
}
