import type { DeviceClock } from './environment.ts';

/**
 * Estimates the server's clock from the `Date` header of its responses (RFC 9110 §6.6.1), so token
 * expiry and DPoP `iat` are computed in server time however far off the device clock is.
 */
export class ServerClock {
  constructor(
    private readonly device: DeviceClock,
    /** Server clock minus device clock, in milliseconds. */
    public offsetMs = 0,
    private calibrated = false,
  ) {}

  /** Returns the server's current time as estimated on this device, in epoch milliseconds. */
  now(): number {
    return this.device.now() + this.offsetMs;
  }

  /** Adopts an offset remembered from an earlier launch, unless this launch has measured one. */
  seed(offsetMs: number): void {
    if (!this.calibrated) this.offsetMs = offsetMs;
  }

  toDeviceTime(serverMs: number): number {
    return serverMs - this.offsetMs;
  }

  /** Takes one sample: the `Date` header of a response to a request sent at `sentAt` (device time). */
  observe(dateHeader: string | null, sentAt: number, receivedAt: number): void {
    if (!dateHeader) return;
    const serverSeconds = Date.parse(dateHeader);
    if (Number.isNaN(serverSeconds)) return;

    // The header truncates to whole seconds, so the server's time was in [date, date + 1 s). The
    // midpoint of that second is compared with the midpoint of the round trip.
    const sample = serverSeconds + 500 - (sentAt + receivedAt) / 2;
    if (!this.calibrated || Math.abs(sample - this.offsetMs) > 2_000) {
      // First sample, or the device clock was changed: adopt the new offset outright.
      this.offsetMs = sample;
      this.calibrated = true;
      return;
    }
    // Samples from one clock differ only by the header's rounding; averaging smooths that out.
    this.offsetMs = Math.round((this.offsetMs + sample) / 2);
  }
}
