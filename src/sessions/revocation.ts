import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';

/**
 * The revocation view: which sessions and devices were revoked, and each user's "not before" time.
 *
 * PostgreSQL is the source of truth. Redis holds the shared record with TTLs equal to the longest
 * access-token lifetime, and a pub/sub broadcast keeps each instance's in-process copy current. A
 * marker key proves Redis still holds the record it was given: when the marker is gone (Redis
 * restarted or flushed), the instance answers from its in-process copy and rewrites Redis from
 * PostgreSQL, so losing Redis never brings a revoked session back.
 */

export interface RevocationSubject {
  sessionId: string;
  deviceId: string;
  userId: string;
  /** `iat` of the token, in epoch seconds, compared with the user's "not before" time. */
  issuedAt: number;
}

interface RevocationMessage {
  sessions?: string[];
  devices?: string[];
  users?: Array<{ id: string; notBefore: number }>;
}

const channel = 'revocations';
const markerKey = 'rv:marker';
const sessionKey = (id: string) => `rv:s:${id}`;
const deviceKey = (id: string) => `rv:d:${id}`;
const userKey = (id: string) => `rv:u:${id}`;

export interface RevocationViewOptions {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  /** How long a revocation must be remembered: the access-token lifetime plus clock skew. */
  retentionSeconds: number;
}

export class RevocationView {
  private readonly sessions = new Map<string, number>();
  private readonly devices = new Map<string, number>();
  private readonly users = new Map<string, { notBefore: number; expiresAt: number }>();
  private reloading: Promise<void> | undefined;
  private lastSyncedAt = 0;

  constructor(private readonly options: RevocationViewOptions) {}

  /** Subscribes to broadcasts, then loads the view; an instance answers requests only after this. */
  async start(): Promise<void> {
    await this.options.state.subscribe(channel, (message) => this.apply(message));
    await this.reload();
  }

  /** Milliseconds since the view last agreed with Redis or PostgreSQL. */
  staleness(): number {
    return this.options.clock.now().getTime() - this.lastSyncedAt;
  }

  /** Returns whether the token's session, device or user was revoked after the token was issued. */
  async isRevoked(subject: RevocationSubject): Promise<boolean> {
    if (this.isRevokedLocally(subject)) return true;

    let values: Array<string | null>;
    try {
      values = await this.options.state.mget([markerKey, sessionKey(subject.sessionId), deviceKey(subject.deviceId), userKey(subject.userId)]);
    } catch (error) {
      // Redis is unreachable: the in-process copy, kept current until the outage, is the best record.
      this.options.logger.warn({ err: error }, 'revocation check fell back to the in-process view');
      return false;
    }
    const [marker, session, device, user] = values;
    if (marker === null) {
      // Redis lost its data. This instance's copy may miss revocations made before it started, so
      // the answer waits for PostgreSQL rather than letting a revoked token through.
      this.options.logger.warn('revocation marker missing from Redis; reloading the view from PostgreSQL');
      await this.reload();
      return this.isRevokedLocally(subject);
    }
    this.lastSyncedAt = this.options.clock.now().getTime();
    if (session !== null || device !== null) return true;
    return user !== null && subject.issuedAt < Number(user);
  }

  private isRevokedLocally(subject: RevocationSubject): boolean {
    const now = this.options.clock.now().getTime();
    if (this.liveUntil(this.sessions, subject.sessionId, now)) return true;
    if (this.liveUntil(this.devices, subject.deviceId, now)) return true;
    const user = this.users.get(subject.userId);
    if (user && user.expiresAt > now) return subject.issuedAt < user.notBefore;
    return false;
  }

  private liveUntil(entries: Map<string, number>, id: string, now: number): boolean {
    const expiresAt = entries.get(id);
    if (expiresAt === undefined) return false;
    if (expiresAt > now) return true;
    entries.delete(id);
    return false;
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
      ...(message.devices ?? []).map((id) => ({ key: deviceKey(id), value: '1', ttlSeconds: ttl })),
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
    for (const id of message.devices ?? []) this.devices.set(id, expiresAt);
    for (const user of message.users ?? []) {
      const current = this.users.get(user.id);
      if (!current || current.notBefore < user.notBefore) this.users.set(user.id, { notBefore: user.notBefore, expiresAt });
    }
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
    const since = new Date(now.getTime() - this.options.retentionSeconds * 1000);
    const revoked = await this.options.db.session.findMany({ where: { revokedAt: { gte: since } }, select: { id: true, revokedAt: true } });

    const sessions = revoked.map((row) => row.id);
    const ttlFor = (revokedAt: Date | null) => Math.max(1, this.options.retentionSeconds - (now.getTime() - (revokedAt ?? now).getTime()) / 1000);
    for (const row of revoked) this.sessions.set(row.id, now.getTime() + ttlFor(row.revokedAt) * 1000);

    const entries = revoked.map((row) => ({ key: sessionKey(row.id), value: '1', ttlSeconds: ttlFor(row.revokedAt) }));
    try {
      await this.options.state.setMany(entries);
      await this.options.state.set(markerKey, now.toISOString());
      this.lastSyncedAt = now.getTime();
      this.options.logger.info({ sessions: sessions.length }, 'revocation view loaded from PostgreSQL');
    } catch (error) {
      this.options.logger.warn({ err: error, sessions: sessions.length }, 'revocation view loaded into process only: Redis is unreachable');
    }
  }
}
