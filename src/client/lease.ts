import { sleep, type DeviceClock, type RandomSource, type Timers } from './environment.ts';
import type { RefreshLease, TokenStorage } from './storage.ts';

export interface LeaseOptions {
  /** How long a lease lasts without renewal; the holder renews it before every refresh attempt. */
  ttlMs: number;
  /** Mean wait between checks while another process holds the lease. */
  pollMs: number;
}

export const defaultLeaseOptions: LeaseOptions = { ttlMs: 20_000, pollMs: 250 };

/**
 * A lock record in the shared store, taken with compare-and-set, so at most one process sends a
 * given refresh token at a time. The holder renews the lease before each attempt and stops when a
 * renewal fails. A lease whose holder died expires after `ttlMs`, and one left by an earlier launch
 * of the same process is taken over at once.
 */
export class RefreshLeaseLock {
  private version: string | null = null;

  constructor(
    private readonly storage: TokenStorage,
    private readonly holder: { process: string; launchId: string },
    private readonly env: { clock: DeviceClock; timers: Timers; random: RandomSource },
    private readonly options: LeaseOptions,
  ) {}

  /** Waits until this process holds the lease. */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const current = await this.storage.read('refreshLease');
      if (!current || this.canTakeOver(current.value)) {
        const result = await this.storage.compareAndSet('refreshLease', current?.version ?? null, this.newLease());
        if (result.written) {
          this.version = result.version;
          return;
        }
        continue;
      }

      // Polling at a jittered interval keeps the app and its extension from checking in lockstep.
      const remaining = current.value.expiresAt - this.env.clock.now();
      const wait = Math.min(remaining, this.options.pollMs * (0.5 + this.env.random()));
      await sleep(this.env.timers, Math.max(1, wait), signal);
    }
  }

  /** Extends the lease; returns false when another process has taken it since. */
  async renew(): Promise<boolean> {
    if (this.version === null) return false;
    const result = await this.storage.compareAndSet('refreshLease', this.version, this.newLease());
    this.version = result.written ? result.version : null;
    return result.written;
  }

  async release(): Promise<void> {
    if (this.version === null) return;
    const version = this.version;
    this.version = null;
    await this.storage.compareAndSet('refreshLease', version, null);
  }

  private canTakeOver(lease: RefreshLease): boolean {
    const remaining = lease.expiresAt - this.env.clock.now();
    if (remaining <= 0) return true;
    // A lease further out than one lifetime means the device clock was set back since it was written.
    if (remaining > this.options.ttlMs) return true;
    if (lease.launchId === this.holder.launchId) return true;
    // One process kind runs once per device at a time, so a lease of its own kind with another
    // launch id was left by a launch that was killed.
    return lease.process === this.holder.process;
  }

  private newLease(): RefreshLease {
    return { process: this.holder.process, launchId: this.holder.launchId, expiresAt: this.env.clock.now() + this.options.ttlMs };
  }
}
