import type { RetryCause } from '../src/client/index.ts';

export interface SignOutRecord {
  device: number;
  reason: string;
  at: number;
  /** Whether the device's tokens had been copied to an attacker before it was signed out. */
  stolen: boolean;
}

export interface TheftRecord {
  victim: number;
  stolenAt: number;
  /** Party and sign-out reason of the first rejection of the copied tokens, such as `attacker:device_mismatch`. */
  detectedBy: string | undefined;
  /** Requests whose response gave the attacker data before it was rejected. */
  attackerRequestsServed: number;
}

/** Sign-out reasons a theft explains on the victim's device. */
export const theftSignOutReasons = new Set(['refresh_token_reused', 'session_revoked']);

/** Counters and samples a fleet run collects. */
export class FleetMetrics {
  readonly faults = new Map<string, number>();
  readonly retries = new Map<RetryCause, number>();
  readonly signOuts: SignOutRecord[] = [];
  readonly thefts: TheftRecord[] = [];
  readonly refreshLatenciesMs: number[] = [];
  /** Refresh responses carrying a token pair, per second of the fleet's clock. */
  readonly refreshesPerSecond = new Map<number, number>();
  refreshes = 0;
  requestsServed = 0;
  requestsFailed = 0;
  signUpFailures = 0;

  fault(kind: string): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + 1);
  }

  retry(cause: RetryCause): void {
    this.retries.set(cause, (this.retries.get(cause) ?? 0) + 1);
  }

  /** Records one refresh exchange that got a response: its wall-clock latency and, if it issued a pair, when. */
  refreshAnswered(issuedPair: boolean, latencyMs: number, at: number): void {
    this.refreshLatenciesMs.push(latencyMs);
    if (!issuedPair) return;
    this.refreshes += 1;
    const second = Math.floor(at / 1000);
    this.refreshesPerSecond.set(second, (this.refreshesPerSecond.get(second) ?? 0) + 1);
  }

  /** Returns the refreshes of the busiest second between `from` and `until` (epoch milliseconds on the fleet's clock). */
  peakRefreshesPerSecond(from = -Infinity, until = Infinity): number {
    let peak = 0;
    for (const [second, count] of this.refreshesPerSecond) {
      if (second * 1000 >= from && second * 1000 < until) peak = Math.max(peak, count);
    }
    return peak;
  }
}

/** Returns the value below which `fraction` of the samples fall (nearest-rank method). */
export function percentile(samples: number[], fraction: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] as number;
}
