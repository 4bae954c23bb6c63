import { randomUUID } from 'node:crypto';

import type { DeviceTrust, RiskLevel } from '../authz/principal.ts';
import type { Clock } from '../clock.ts';
import type { StateStore } from '../store/state.ts';
import type { RiskConfig, SignalName } from './config.ts';
import { distanceKm, type EdgeLocation, type GeoLocator, type GeoObservation } from './geo.ts';
import { clientSubject, ipv6Prefix64, normalizeIp } from './ip.ts';

/**
 * Risk signals, measured in the state store (Redis, or memory in embedded mode) with sliding
 * windows scored by the injected clock. A signal fires when its measurement crosses its configured
 * threshold; the measurements themselves are kept for the audit trail.
 */

export interface Signal {
  name: SignalName;
  detail: Record<string, string | number | boolean | string[]>;
}

export interface SignalSet {
  fired: Signal[];
  /** Every measurement taken, fired or not; counts, distances and flags only. */
  measured: Record<string, string | number | boolean | null>;
}

/** The facts of a sign-in attempt known before its password is checked. */
export interface LoginAttempt {
  /** A pseudonymous key for the account named in the attempt, existing or not. */
  accountKey: string;
  ip: string | undefined;
  /** The device key's JWK thumbprint or the `X-Device-Id` header, when the app sent one. */
  deviceKey: string | undefined;
}

/** The columns of a device row the risk engine reads. */
export interface DeviceFacts {
  id: string;
  trust: DeviceTrust;
  integritySignals: string[];
  suspendedAt: Date | null;
}

interface StoredLocation extends GeoObservation {
  /** Epoch milliseconds. */
  at: number;
}

const keys = {
  failedByAccount: (accountKey: string) => `rk:fl:a:${accountKey}`,
  failedByIp: (ip: string) => `rk:fl:i:${ip}`,
  failedByPrefix: (prefix: string) => `rk:fl:p:${prefix}`,
  accountsByIp: (subject: string) => `rk:fo:i:${subject}`,
  accountsByDevice: (deviceKey: string) => `rk:fo:d:${deviceKey}`,
  refreshesByDevice: (deviceId: string) => `rk:rb:${deviceId}`,
  refreshAccountsByIp: (subject: string) => `rk:rs:${subject}`,
  lastLocation: (userId: string) => `rk:geo:${userId}`,
  fieldUsed: (userId: string, coordinate: string) => `rk:fu:${userId}:${coordinate}`,
};

/** Mirror of `sessions.riskLevel`, read with the revocation keys in one MGET on every request. */
export const sessionRiskKey = (sessionId: string) => `rk:s:${sessionId}`;

/** How long a remembered location or first use of a field is kept. */
const memorySeconds = 180 * 24 * 3600;

export interface RiskSignalsDeps {
  state: StateStore;
  clock: Clock;
  config: RiskConfig;
  geo: GeoLocator;
}

export class RiskSignals {
  constructor(private readonly deps: RiskSignalsDeps) {}

  private now(): number {
    return this.deps.clock.now().getTime();
  }

  /** Returns a member unique to this call, so a window counts events rather than distinct values. */
  private eventMember(now: number): string {
    return `${now}:${randomUUID()}`;
  }

  /**
   * Records a sign-in attempt in the distinct-account windows of its IP and device, and reads the
   * failed-sign-in velocity of its account, IP and IPv6 /64.
   */
  async loginAttempt(attempt: LoginAttempt): Promise<SignalSet> {
    const { state, config } = this.deps;
    const now = this.now();
    const ip = attempt.ip ? normalizeIp(attempt.ip) : undefined;
    const prefix = ip ? ipv6Prefix64(ip) : undefined;
    const fanout = config.fanout;
    const failed = config.failedLogins;

    const [accountsFromIp, accountsFromDevice, failedAccount, failedIp, failedPrefix] = await Promise.all([
      ip ? state.windowAdd(keys.accountsByIp(clientSubject(ip)), attempt.accountKey, now, fanout.windowSeconds) : 0,
      attempt.deviceKey ? state.windowAdd(keys.accountsByDevice(attempt.deviceKey), attempt.accountKey, now, fanout.windowSeconds) : 0,
      state.windowCount(keys.failedByAccount(attempt.accountKey), now, failed.windowSeconds),
      ip ? state.windowCount(keys.failedByIp(ip), now, failed.windowSeconds) : 0,
      prefix ? state.windowCount(keys.failedByPrefix(prefix), now, failed.windowSeconds) : 0,
    ]);

    const set: SignalSet = { fired: [], measured: { accountsFromIp, accountsFromDevice, failedAccount, failedIp, failedPrefix } };
    fireAbove(set, 'account_fanout_ip', accountsFromIp, fanout.ipThreshold, fanout.windowSeconds);
    fireAbove(set, 'account_fanout_device', accountsFromDevice, fanout.deviceThreshold, fanout.windowSeconds);
    fireAbove(set, 'failed_logins_account', failedAccount, failed.accountThreshold, failed.windowSeconds);
    fireAbove(set, 'failed_logins_ip', failedIp, failed.ipThreshold, failed.windowSeconds);
    fireAbove(set, 'failed_logins_prefix', failedPrefix, failed.prefixThreshold, failed.windowSeconds);
    return set;
  }

  /** Counts a failed sign-in against its account, IP and IPv6 /64. */
  async recordFailedLogin(attempt: LoginAttempt): Promise<void> {
    const { state, config } = this.deps;
    const now = this.now();
    const member = this.eventMember(now);
    const window = config.failedLogins.windowSeconds;
    const ip = attempt.ip ? normalizeIp(attempt.ip) : undefined;
    const prefix = ip ? ipv6Prefix64(ip) : undefined;

    await Promise.all([
      state.windowAdd(keys.failedByAccount(attempt.accountKey), member, now, window),
      ip ? state.windowAdd(keys.failedByIp(ip), member, now, window) : undefined,
      prefix ? state.windowAdd(keys.failedByPrefix(prefix), member, now, window) : undefined,
    ]);
  }

  /** Signals of the device itself: integrity flags from attestation and its trust level. */
  deviceSignals(set: SignalSet, device: DeviceFacts): void {
    set.measured.deviceTrust = device.trust;
    set.measured.integritySignals = device.integritySignals.length;
    if (device.integritySignals.length > 0) set.fired.push({ name: 'device_integrity', detail: { flags: device.integritySignals } });
    if (device.trust === 'UNKNOWN') set.fired.push({ name: 'device_untrusted', detail: { trust: device.trust } });
  }

  /** Signals of a sign-in whose password was right: new device, impossible travel, the device. */
  async loginContext(input: { userId: string; isNewDevice: boolean; device: DeviceFacts; ip: string | undefined; edge: EdgeLocation | undefined }, set: SignalSet): Promise<GeoObservation | undefined> {
    set.measured.newDevice = input.isNewDevice;
    if (input.isNewDevice) set.fired.push({ name: 'new_device', detail: { deviceId: input.device.id } });
    this.deviceSignals(set, input.device);
    return this.travel(input.userId, input.ip, input.edge, set);
  }

  /**
   * Signals of a refresh: bursts from one device and many accounts refreshing from one IP in a
   * short window (a farm replaying stolen refresh tokens), then travel and the device.
   */
  async refreshContext(input: { userId: string; device: DeviceFacts; ip: string | undefined; edge: EdgeLocation | undefined; tokenKey?: string }, set: SignalSet): Promise<GeoObservation | undefined> {
    const { state, config } = this.deps;
    const now = this.now();
    const refresh = config.refresh;

    const [burst, accountsFromIp] = await Promise.all([
      // Retries of one refresh token (a lost response, concurrent requests of one app) are one
      // refresh: the window counts each presented token once.
      state.windowAdd(keys.refreshesByDevice(input.device.id), input.tokenKey ?? this.eventMember(now), now, refresh.burstWindowSeconds),
      input.ip ? state.windowAdd(keys.refreshAccountsByIp(clientSubject(input.ip)), input.userId, now, refresh.syncWindowSeconds) : 0,
    ]);
    set.measured.refreshBurst = burst;
    set.measured.refreshAccountsFromIp = accountsFromIp;
    fireAbove(set, 'refresh_burst', burst, refresh.burstThreshold, refresh.burstWindowSeconds);
    fireAbove(set, 'refresh_sync', accountsFromIp, refresh.syncThreshold, refresh.syncWindowSeconds);

    this.deviceSignals(set, input.device);
    return this.travel(input.userId, input.ip, input.edge, set);
  }

  /** Signals before a field of an assessed tier: first use by this account and the session's level. */
  async sensitiveContext(input: { userId: string; coordinate: string; sessionRiskLevel: RiskLevel }, set: SignalSet): Promise<void> {
    const used = await this.deps.state.get(keys.fieldUsed(input.userId, input.coordinate));
    set.measured.firstUse = used === null;
    set.measured.sessionRiskLevel = input.sessionRiskLevel;
    if (used === null) set.fired.push({ name: 'first_sensitive_use', detail: { field: input.coordinate } });
    if (input.sessionRiskLevel === 'MEDIUM') set.fired.push({ name: 'session_risk_medium', detail: {} });
    if (input.sessionRiskLevel === 'HIGH') set.fired.push({ name: 'session_risk_high', detail: {} });
  }

  async markFieldUsed(userId: string, coordinate: string): Promise<void> {
    await this.deps.state.set(keys.fieldUsed(userId, coordinate), String(this.now()), memorySeconds);
  }

  /**
   * Compares the request's location with the account's last one. Returns the current location so
   * the caller can remember it once the request is allowed.
   */
  private async travel(userId: string, ip: string | undefined, edge: EdgeLocation | undefined, set: SignalSet): Promise<GeoObservation | undefined> {
    const current = this.deps.geo.locate(ip, edge);
    set.measured.geoSource = this.deps.geo.source;
    if (!current) return undefined;

    const raw = await this.deps.state.get(keys.lastLocation(userId));
    const previous = raw ? parseLocation(raw) : undefined;
    if (!previous) return current;

    const travel = this.deps.config.travel;
    const elapsedSeconds = Math.max(0, (this.now() - previous.at) / 1000);
    if (hasCoordinates(previous) && hasCoordinates(current)) {
      const km = distanceKm(previous, current);
      // Zero elapsed time counts as one second, so two places at once read as very fast.
      const kmh = km / (Math.max(elapsedSeconds, 1) / 3600);
      set.measured.travelKm = Math.round(km);
      set.measured.travelKmh = Math.round(kmh);
      if (km > travel.minKm && kmh > travel.maxKmh) {
        set.fired.push({ name: 'impossible_travel', detail: { km: Math.round(km), kmh: Math.round(kmh), elapsedSeconds: Math.round(elapsedSeconds) } });
      }
      return current;
    }
    if (previous.country && current.country && previous.country !== current.country && elapsedSeconds < travel.countryChangeSeconds) {
      set.fired.push({ name: 'impossible_travel', detail: { from: previous.country, to: current.country, elapsedSeconds: Math.round(elapsedSeconds) } });
    }
    return current;
  }

  async rememberLocation(userId: string, location: GeoObservation | undefined): Promise<void> {
    if (!location) return;
    const stored: StoredLocation = { ...location, at: this.now() };
    await this.deps.state.set(keys.lastLocation(userId), JSON.stringify(stored), memorySeconds);
  }
}

/** Fires `name` when `value` reached `threshold` within the window. */
function fireAbove(set: SignalSet, name: SignalName, value: number, threshold: number, windowSeconds: number): void {
  if (value >= threshold) set.fired.push({ name, detail: { count: value, threshold, windowSeconds } });
}

function hasCoordinates(location: GeoObservation): location is GeoObservation & { latitude: number; longitude: number } {
  return location.latitude !== undefined && location.longitude !== undefined;
}

function parseLocation(raw: string): StoredLocation | undefined {
  try {
    const value = JSON.parse(raw) as StoredLocation;
    return typeof value.at === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

export function emptySignalSet(): SignalSet {
  return { fired: [], measured: {} };
}
