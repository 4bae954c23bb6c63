import type { Clock } from '../src/clock.ts';
import type { CryptoProvider, DeviceClock, FetchLike, Timers } from '../src/client/index.ts';
import type { SimulationTime } from './time.ts';

interface PendingTimer {
  at: number;
  sequence: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * Discrete-event time for clients and an in-process gateway. Virtual time does not move while real
 * work is in flight (HTTP exchanges and Web Crypto calls wrapped with `track`), and jumps to the next
 * timer once everything is idle. An hour of timers therefore runs in as long as its requests take,
 * and a slow machine changes the wall time but not what happens at which virtual moment.
 */
export class VirtualTime implements SimulationTime {
  private current: number;
  private sequence = 0;
  private readonly queue: PendingTimer[] = [];
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** The gateway's clock. */
  readonly gatewayClock: Clock = { now: () => new Date(this.current) };

  /** Returns a device clock `offsetMs` away from the gateway's. */
  deviceClock(offsetMs = 0): DeviceClock {
    return { now: () => this.current + offsetMs };
  }

  readonly timers: Timers = {
    setTimeout: (callback, delayMs) => this.schedule(callback, delayMs),
    clearTimeout: (handle) => {
      if (handle) (handle as PendingTimer).cancelled = true;
    },
  };

  /** Holds virtual time still until `work` settles. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.active += 1;
    try {
      return await work();
    } finally {
      this.active -= 1;
      if (this.active === 0) this.wakeIdleWaiters();
    }
  }

  /** Wraps `fetch` so virtual time waits for each exchange, the reading of the body included. */
  trackedFetch(fetch: FetchLike): FetchLike {
    return (input, init) =>
      this.track(async () => {
        const response = await fetch(input, init);
        const body = await response.arrayBuffer();
        return new Response(body.byteLength === 0 && response.status === 204 ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers });
      });
  }

  /** Web Crypto whose asynchronous calls hold virtual time still. */
  trackedCrypto(crypto: CryptoProvider): CryptoProvider {
    const subtle = crypto.subtle;
    const tracked = new Proxy(subtle, {
      get: (target, property) => {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => this.track(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      },
    });
    return { subtle: tracked, getRandomValues: (array) => crypto.getRandomValues(array) };
  }

  /** Resolves once no tracked work is in flight and two event-loop turns passed without new work. */
  async settle(): Promise<void> {
    for (let quietTurns = 0; quietTurns < 2; ) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.active > 0) {
        quietTurns = 0;
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
        continue;
      }
      quietTurns += 1;
    }
  }

  /**
   * Runs every timer due up to `until` in time order and ends at `until`. Timers due within one
   * `quantumMs` of each other fire together at the latest of their times, so their requests overlap
   * as a fleet's would. The default 0 fires one instant at a time.
   */
  async runUntil(until: number, quantumMs = 0): Promise<void> {
    await this.settle();
    while (await this.step(until, quantumMs));
    this.current = Math.max(this.current, until);
  }

  advance(ms: number, quantumMs = 0): Promise<void> {
    return this.runUntil(this.current + ms, quantumMs);
  }

  /**
   * Moves time from timer to timer until `work` settles, and returns its result. Fails when no timer
   * is left, or none is due within `maxMs`, while `work` is still pending.
   */
  async drive<T>(work: Promise<T>, maxMs = 86_400_000): Promise<T> {
    let settled = false;
    work.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = this.current + maxMs;
    await this.settle();
    while (!settled) {
      if (!(await this.step(deadline, 0))) throw new Error(`virtual time stalled at ${new Date(this.current).toISOString()} with the work still pending`);
    }
    return work;
  }

  /** Fires the next batch of timers due by `until` and settles; returns false when none is due. */
  private async step(until: number, quantumMs: number): Promise<boolean> {
    const first = this.peek();
    if (!first || first.at > until) return false;

    const batchEnd = Math.min(until, first.at + quantumMs);
    const batch: PendingTimer[] = [];
    for (let next = this.peek(); next && next.at <= batchEnd; next = this.peek()) batch.push(this.pop() as PendingTimer);
    this.current = Math.max(this.current, (batch[batch.length - 1] as PendingTimer).at);
    for (const timer of batch) {
      if (!timer.cancelled) timer.callback();
    }
    await this.settle();
    return true;
  }

  private schedule(callback: () => void, delayMs: number): PendingTimer {
    const timer: PendingTimer = { at: this.current + Math.max(0, delayMs), sequence: this.sequence++, callback, cancelled: false };
    this.push(timer);
    return timer;
  }

  /** Returns the earliest live timer, dropping cancelled ones on the way. */
  private peek(): PendingTimer | undefined {
    while (this.queue.length > 0 && (this.queue[0] as PendingTimer).cancelled) this.pop();
    return this.queue[0];
  }

  // A binary min-heap ordered by (at, sequence), so timers due at one instant fire in creation order.
  private push(timer: PendingTimer): void {
    const heap = this.queue;
    heap.push(timer);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!earlier(timer, heap[parent] as PendingTimer)) break;
      heap[index] = heap[parent] as PendingTimer;
      index = parent;
    }
    heap[index] = timer;
  }

  private pop(): PendingTimer | undefined {
    const heap = this.queue;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || !last) return top;

    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && earlier(heap[right] as PendingTimer, heap[left] as PendingTimer) ? right : left;
      if (!earlier(heap[child] as PendingTimer, last)) break;
      heap[index] = heap[child] as PendingTimer;
      index = child;
    }
    heap[index] = last;
    return top;
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

function earlier(a: PendingTimer, b: PendingTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.sequence < b.sequence);
}
