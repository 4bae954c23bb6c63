import type { DeviceTrust } from '../authz/principal.ts';
import { epochSeconds } from '../clock.ts';
import type { SessionLifetime } from './config.ts';

/**
 * Device trust levels, computed from the device row. Each level includes the one below it:
 * - BASIC: the device registered a P-256 key and proved possession with a DPoP proof (`jkt` set);
 * - ATTESTED: its last platform attestation passed and has not expired, and it reported no
 *   trust-lowering integrity signal;
 * - TRUSTED: the user confirmed it with a second factor (`trustedAt`), and it has stayed attested and
 *   free of such signals for the configured period since.
 * A suspended or removed device is UNKNOWN, whatever it proved before.
 */

/** Integrity signals that keep a device at BASIC even with an authentic attestation. */
export const trustLoweringSignals: ReadonlySet<string> = new Set([
  'rooted',
  'jailbroken',
  'debugger',
  'emulator',
  'unrecognised_app',
  // Play Integrity: basic integrity without device integrity, typically a rooted or uncertified device.
  'basic_integrity_only',
]);

/** `devices.attestation_status` of an attestation that passed; any other value does not count. */
export const attestationPassed = 'PASSED';
export const attestationFailed = 'FAILED';

/** The inputs of the trust computation. Stored in Redis as they are, times in epoch seconds. */
export interface TrustFacts {
  /** JWK thumbprint of the bound device key, or null when the device is not key-bound. */
  jkt: string | null;
  /** Suspended pending verification, or removed by the user. */
  suspended: boolean;
  /** Last passed attestation, null when the last attestation failed or none was made. */
  attestedAt: number | null;
  attestationExpiresAt: number | null;
  /** Whether the device reported a trust-lowering integrity signal. */
  flagged: boolean;
  /** When the user confirmed the device with a second factor. */
  trustedAt: number | null;
}

/** The device columns the trust computation reads, as a Prisma `select`. */
export const deviceTrustSelect = {
  jkt: true,
  suspendedAt: true,
  removedAt: true,
  attestationStatus: true,
  attestedAt: true,
  attestationExpiresAt: true,
  integritySignals: true,
  trustedAt: true,
} as const;

export interface DeviceTrustRow {
  jkt: string | null;
  suspendedAt: Date | null;
  removedAt: Date | null;
  attestationStatus: string | null;
  attestedAt: Date | null;
  attestationExpiresAt: Date | null;
  integritySignals: string[];
  trustedAt: Date | null;
}

const seconds = (date: Date | null) => (date ? epochSeconds(date) : null);

export function hasTrustLoweringSignal(signals: readonly string[]): boolean {
  return signals.some((signal) => trustLoweringSignals.has(signal));
}

export function trustFactsOf(device: DeviceTrustRow): TrustFacts {
  const passed = device.attestationStatus === attestationPassed;
  return {
    jkt: device.jkt,
    suspended: device.suspendedAt !== null || device.removedAt !== null,
    attestedAt: passed ? seconds(device.attestedAt) : null,
    attestationExpiresAt: passed ? seconds(device.attestationExpiresAt) : null,
    flagged: hasTrustLoweringSignal(device.integritySignals),
    trustedAt: seconds(device.trustedAt),
  };
}

/** Returns whether the device's attestation counts at `nowSeconds`. */
export function isAttested(facts: TrustFacts, nowSeconds: number): boolean {
  return facts.attestedAt !== null && facts.attestationExpiresAt !== null && facts.attestationExpiresAt > nowSeconds;
}

export function computeTrust(facts: TrustFacts, nowSeconds: number, trustedAfterSeconds: number): DeviceTrust {
  if (facts.suspended) return 'UNKNOWN';
  if (facts.jkt === null) return 'UNKNOWN';
  if (!isAttested(facts, nowSeconds) || facts.flagged) return 'BASIC';
  if (facts.trustedAt !== null && nowSeconds - facts.trustedAt >= trustedAfterSeconds) return 'TRUSTED';
  return 'ATTESTED';
}

/** Trust policy: the trust-level computation plus session lifetimes by level. */
export class TrustPolicy {
  constructor(
    readonly trustedAfterSeconds: number,
    readonly lifetimes: Record<DeviceTrust, SessionLifetime>,
  ) {}

  trustOf(device: DeviceTrustRow, now: Date): DeviceTrust {
    return computeTrust(trustFactsOf(device), epochSeconds(now), this.trustedAfterSeconds);
  }

  lifetimeOf(device: DeviceTrustRow, now: Date): SessionLifetime {
    return this.lifetimes[this.trustOf(device, now)];
  }

  /** The maximum absolute session lifetime of any level, which is how long a trust record must outlive its last write. */
  get maxAbsoluteSeconds(): number {
    return Math.max(...Object.values(this.lifetimes).map((lifetime) => lifetime.absoluteSeconds));
  }
}

/** Redis key of a device's trust record, read with the revocation record on every key-bound request. */
export function trustRecordKey(deviceId: string): string {
  return `dt:${deviceId}`;
}

export function encodeTrustRecord(facts: TrustFacts): string {
  return JSON.stringify({ v: 1, ...facts });
}

const nullableNumber = (value: unknown): value is number | null => value === null || typeof value === 'number';

/** Parses a trust record; undefined when it is missing or not one this version wrote. */
export function decodeTrustRecord(raw: string | null): TrustFacts | undefined {
  if (raw === null) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (value.v !== 1) return undefined;
  if (value.jkt !== null && typeof value.jkt !== 'string') return undefined;
  if (typeof value.suspended !== 'boolean' || typeof value.flagged !== 'boolean') return undefined;
  if (!nullableNumber(value.attestedAt) || !nullableNumber(value.attestationExpiresAt) || !nullableNumber(value.trustedAt)) return undefined;
  return {
    jkt: value.jkt,
    suspended: value.suspended,
    attestedAt: value.attestedAt,
    attestationExpiresAt: value.attestationExpiresAt,
    flagged: value.flagged,
    trustedAt: value.trustedAt,
  };
}

export interface LiveTrust {
  trust: DeviceTrust;
  /** Epoch seconds of the attestation that counts now, if any. */
  attestedAt: number | undefined;
}

/**
 * Computes the trust of a request whose key-bound token carries `jkt` from the device's trust record.
 * A record bound to another key (the device was removed or re-keyed) gives UNKNOWN.
 */
export function liveTrustOf(facts: TrustFacts, jkt: string, nowSeconds: number, trustedAfterSeconds: number): LiveTrust {
  if (facts.jkt !== jkt) return { trust: 'UNKNOWN', attestedAt: undefined };
  const trust = computeTrust(facts, nowSeconds, trustedAfterSeconds);
  const attested = trust === 'ATTESTED' || trust === 'TRUSTED';
  return { trust, attestedAt: attested ? (facts.attestedAt ?? undefined) : undefined };
}
