import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';

/**
 * The revocation view: which sessions were revoked, and each device's and user's "not before" time
 * (tokens issued earlier are rejected).
 *
 * PostgreSQL is the source of truth. Redis stores the shared record with TTLs equal to the longest
 * access-token lifetime, and a pub/sub broadcast keeps each instance's in-process copy current. A
 * marker key proves Redis still holds the record it was given: when the marker is gone (Redis
 * restarted or flushed), the instance answers from its in-process copy and rewrites Redis from
 * PostgreSQL, so losing Redis never brings a revoked session back.
 *
 * While Redis is unreachable, or its record is being rebuilt, answers come from the in-process copy
 * alone and say so: `cached` while the copy is younger than `maxStalenessSeconds`, `stale` after.
 * The tier rules decide which fields may still be served from such an answer.
 */

export interface RevocationSubject {
  sessionId: string;
  deviceId: string;
  userId: string;
  /** `iat` of the token, in epoch seconds, compared with the device's and user's "not before" time. */
  issuedAt: number;
}

/**
 * How far a revocation check result can be trusted: `verified` when Redis confirmed it (or the token is
 * revoked, which needs no confirmation), `cached` when only the in-process copy was consulted and it
 * is younger than the staleness bound, `stale` when it is older.
 */
export type RevocationFreshness = 'verified' | 'cached' | 'stale';

export interface RevocationCheck {
  revoked: boolean;
  freshness: RevocationFreshness;
  /** Values of the `extraKeys` passed to `check`, in order; absent when Redis was not read. */
  extra?: Array<string | null>;
}

/** A broadcast revocation. `notBefore` is in epoch seconds: tokens with an earlier `iat` are rejected. */
export interface RevocationMessage {
  sessions?: string[];
  devices?: Array<{ id: string; notBefore: number }>;
  users?: Array<{ id: string; notBefore: number }>;
}

const channel = 'revocations';
const markerKey = 'rv:marker';
const sessionKey = (id: string) => `rv:s:${id}`;
const deviceKey = (id: string) => `rv:d:${id}`;
const userKey = (id: string) => `rv:u:${id}`;

/** A Redis check slower than this is treated as an outage, so one stuck connection cannot stall every request. */
const redisCheckTimeoutMs = 1000;

export interface RevocationViewOptions {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  /** How long a revocation must be remembered: the access-token lifetime plus clock skew. */
  retentionSeconds: number;
  /** How long the in-process copy may serve LOW and MEDIUM fields alone while Redis is unreachable. */
  maxStalenessSeconds?: number;
}

/**
 * Returns the epoch second from which tokens are accepted again after a revocation at `at`. `iat`
 * has whole seconds, so this rounds up: a token issued in the same second as the revocation is
 * rejected too, even one issued just after it.
 */
export function notBeforeOf(at: Date): number {
  return Math.ceil(at.getTime() / 1000);
}

export class RevocationView {
  private readonly sessions = new Map<string, number>();
  private readonly devices = new Map<string, { notBefore: number; expiresAt: number }>();
  private readonly users = new Map<string, { notBefore: number; expiresAt: number }>();
  private reloading: Promise<void> | undefined;
  /** Set from start until a reload has rewritten Redis, and again whenever Redis is lost. */
  private needsReload = true;
  private lastSyncedAt = 0;

  constructor(private readonly options: RevocationViewOptions) {}

  /** Subscribes to broadcasts, then loads the view; an instance serves requests only after this. */
  async start(): Promise<void> {
    await this.options.state.subscribe(channel, (message) => this.apply(message));
    this.options.state.onConnectionChange?.((connected) => this.connectionChanged(connected));
    await this.reload();
  }

  /** Milliseconds since the view last agreed with Redis or PostgreSQL. */
  staleness(): number {
    return this.options.clock.now().getTime() - this.lastSyncedAt;
  }

  /** Returns whether the token's session, device or user was revoked after the token was issued. */
  async isRevoked(subject: RevocationSubject): Promise<boolean> {
    return (await this.check(subject)).revoked;
  }

  /**
   * Checks the in-process copy, then Redis in one round trip. When Redis is unreachable or its record
   * is being rebuilt, returns the in-process result marked `cached` or `stale`; a reload after an
   * outage is awaited first, so a reconnected instance decides from a complete view. `extraKeys`
   * ride in the same MGET, so per-request state such as the session's risk level costs no extra
   * round trip.
   */
  async check(subject: RevocationSubject, extraKeys: readonly string[] = []): Promise<RevocationCheck> {
    if (this.revokedLocally(subject)) return { revoked: true, freshness: 'verified' };
    if (this.reloading) await this.reloading;
    if (this.revokedLocally(subject)) return { revoked: true, freshness: 'verified' };
    if (this.options.state.isConnected?.() === false) return { revoked: false, freshness: this.localFreshness() };

    let values: Array<string | null>;
    try {
      values = await withTimeout(this.options.state.mget([markerKey, sessionKey(subject.sessionId), deviceKey(subject.deviceId), userKey(subject.userId), ...extraKeys]), redisCheckTimeoutMs);
    } catch (error) {
      this.options.logger.warn({ err: error, sessionId: subject.sessionId }, 'revocation check fell back to the in-process view: Redis is unreachable');
      this.needsReload = true;
      return { revoked: false, freshness: this.localFreshness() };
    }

    const [marker, session, device, user, ...extra] = values;
    const revoked = (session ?? null) !== null || notBeforeRejects(device, subject.issuedAt) || notBeforeRejects(user, subject.issuedAt);
    if (revoked) return { revoked: true, freshness: 'verified' };
    if (marker === null) this.needsReload = true;
    if (this.needsReload) return this.checkAfterReload(subject, marker === null ? 'revocation marker missing from Redis' : 'Redis is reachable again');

    this.lastSyncedAt = this.options.clock.now().getTime();
    return { revoked: false, freshness: 'verified', extra };
  }

  /** Rebuilds the view from PostgreSQL before answering, because Redis lost or missed revocations. */
  private async checkAfterReload(subject: RevocationSubject, reason: string): Promise<RevocationCheck> {
    this.options.logger.warn({ reason }, 'reloading the revocation view from PostgreSQL');
    try {
      await this.reload();
    } catch (error) {
      this.options.logger.error({ err: error }, 'revocation view reload failed');
    }
    const revoked = this.revokedLocally(subject);
    return { revoked, freshness: revoked || !this.needsReload ? 'verified' : this.localFreshness() };
  }

  private localFreshness(): RevocationFreshness {
    const maxStalenessMs = (this.options.maxStalenessSeconds ?? 30) * 1000;
    return this.staleness() <= maxStalenessMs ? 'cached' : 'stale';
  }

  /** Returns whether the in-process copy alone records the token as revoked. */
  revokedLocally(subject: RevocationSubject): boolean {
    const now = this.options.clock.now().getTime();
    if (this.liveUntil(this.sessions, subject.sessionId, now)) return true;
    if (this.rejectsIssuedAt(this.devices, subject.deviceId, subject.issuedAt, now)) return true;
    return this.rejectsIssuedAt(this.users, subject.userId, subject.issuedAt, now);
  }

  private liveUntil(entries: Map<string, number>, id: string, now: number): boolean {
    const expiresAt = entries.get(id);
    if (expiresAt === undefined) return false;
    if (expiresAt > now) return true;
    entries.delete(id);
    return false;
  }

  private rejectsIssuedAt(entries: Map<string, { notBefore: number; expiresAt: number }>, id: string, issuedAt: number, now: number): boolean {
    const entry = entries.get(id);
    if (!entry) return false;
    if (entry.expiresAt <= now) {
      entries.delete(id);
      return false;
    }
    return issuedAt < entry.notBefore;
  }

  /**
   * Records revocations already committed to PostgreSQL: locally at once, then in Redis and to every
   * other instance. Throws when Redis cannot be written, so the caller can report it and retry.
   */
  async publish(message: RevocationMessage): Promise<void> {
    this.apply(JSON.stringify(message));
    const ttl = this.options.retentionSeconds;
    const entries = [
      ...(message.sessions ?? []).map((id) => ({ key: sessionKey(id), value: '1', ttlSeconds: ttl })),
      ...(message.devices ?? []).map((device) => ({ key: deviceKey(device.id), value: String(device.notBefore), ttlSeconds: ttl })),
      ...(message.users ?? []).map((user) => ({ key: userKey(user.id), value: String(user.notBefore), ttlSeconds: ttl })),
    ];
    await this.options.state.setMany(entries);
    await this.options.state.publish(channel, JSON.stringify(message));
  }

  private apply(raw: string): void {
    let message: RevocationMessage;
    try {
      message = JSON.parse(raw) as RevocationMessage;
    } catch {
      this.options.logger.warn('ignored a malformed revocation broadcast');
      return;
    }
    const expiresAt = this.options.clock.now().getTime() + this.options.retentionSeconds * 1000;
    for (const id of message.sessions ?? []) this.sessions.set(id, expiresAt);
    for (const device of message.devices ?? []) raiseNotBefore(this.devices, device.id, device.notBefore, expiresAt);
    for (const user of message.users ?? []) raiseNotBefore(this.users, user.id, user.notBefore, expiresAt);
  }

  private connectionChanged(connected: boolean): void {
    if (!connected) {
      if (!this.needsReload) {
        // Broadcasts flowed until now, so the in-process copy was current at this instant.
        this.lastSyncedAt = Math.max(this.lastSyncedAt, this.options.clock.now().getTime());
      }
      this.needsReload = true;
      return;
    }
    if (this.needsReload) this.scheduleReload('Redis connection is ready again');
  }

  private scheduleReload(reason: string): void {
    if (this.reloading) return;
    this.options.logger.warn({ reason }, 'reloading the revocation view from PostgreSQL');
    this.reload().catch((error: unknown) => this.options.logger.error({ err: error }, 'revocation view reload failed'));
  }

  /** Loads recent revocations from PostgreSQL into the in-process copy and rewrites Redis. */
  reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async load(): Promise<void> {
    const now = this.options.clock.now();
    const retentionMs = this.options.retentionSeconds * 1000;
    const since = new Date(now.getTime() - retentionMs);
    const [sessions, devices, users] = await Promise.all([
      this.options.db.session.findMany({ where: { revokedAt: { gte: since } }, select: { id: true, revokedAt: true } }),
      this.options.db.device.findMany({ where: { suspendedAt: { gte: since } }, select: { id: true, suspendedAt: true } }),
      this.options.db.user.findMany({ where: { notBefore: { gte: since } }, select: { id: true, notBefore: true } }),
    ]);

    // Each entry lives until every token it could reject has expired.
    const expiryOf = (at: Date) => Math.max(now.getTime() + 1000, at.getTime() + retentionMs);
    const entries: Array<{ key: string; value: string; ttlSeconds: number }> = [];
    for (const row of sessions) {
      const expiresAt = expiryOf(row.revokedAt as Date);
      this.sessions.set(row.id, Math.max(this.sessions.get(row.id) ?? 0, expiresAt));
      entries.push({ key: sessionKey(row.id), value: '1', ttlSeconds: (expiresAt - now.getTime()) / 1000 });
    }
    for (const row of devices) entries.push(this.restoreNotBefore(this.devices, deviceKey(row.id), row.id, row.suspendedAt as Date, now));
    for (const row of users) entries.push(this.restoreNotBefore(this.users, userKey(row.id), row.id, row.notBefore as Date, now));

    const counts = { sessions: sessions.length, devices: devices.length, users: users.length };
    try {
      for (let start = 0; start < entries.length; start += 1000) await this.options.state.setMany(entries.slice(start, start + 1000));
      await this.options.state.set(markerKey, now.toISOString());
      this.lastSyncedAt = now.getTime();
      this.needsReload = false;
      this.options.logger.info(counts, 'revocation view loaded from PostgreSQL');
    } catch (error) {
      this.options.logger.warn({ err: error, ...counts }, 'revocation view loaded into process only: Redis is unreachable');
    }
  }

  /** Puts a "not before" time read from PostgreSQL into the in-process copy and returns its Redis entry. */
  private restoreNotBefore(entries: Map<string, { notBefore: number; expiresAt: number }>, key: string, id: string, revokedAt: Date, now: Date) {
    const expiresAt = Math.max(now.getTime() + 1000, revokedAt.getTime() + this.options.retentionSeconds * 1000);
    const notBefore = notBeforeOf(revokedAt);
    raiseNotBefore(entries, id, notBefore, expiresAt);
    return { key, value: String(notBefore), ttlSeconds: (expiresAt - now.getTime()) / 1000 };
  }
}

function raiseNotBefore(entries: Map<string, { notBefore: number; expiresAt: number }>, id: string, notBefore: number, expiresAt: number): void {
  const current = entries.get(id);
  if (!current || current.notBefore < notBefore) entries.set(id, { notBefore, expiresAt });
  else if (current.expiresAt < expiresAt) current.expiresAt = expiresAt;
}

function notBeforeRejects(value: string | null | undefined, issuedAt: number): boolean {
  return value !== null && value !== undefined && issuedAt < Number(value);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not respond within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
