import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db, Prisma } from '../store/db.ts';
import type { SigningKeyRing } from '../tokens/keyring.ts';
import { notBeforeOf, type RevocationMessage, type RevocationView } from './revocation.ts';

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

export interface RevocationServiceDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  revocation: RevocationView;
  ring: SigningKeyRing;
}

/** The actor and reason of a revocation, recorded on every audit event it causes. */
export interface RevocationRequest {
  reason: string;
  /** `operator:<user id>`, `cli:<os user>`, `user:<user id>` or `system`. */
  actor: string;
  ip?: string | undefined;
}

export interface RevokedSessions {
  sessionIds: string[];
}

/**
 * Revocation beyond one user's own sessions: single sessions and token families by id, every session
 * of a device or a user, device and user suspension, and their restoration. Each change commits to
 * PostgreSQL with its audit events in one transaction, then goes to Redis and every instance.
 *
 * A token family is the chain of refresh tokens of one session, so revoking a family revokes its
 * session.
 */
export class RevocationService {
  constructor(private readonly deps: RevocationServiceDeps) {}

  /** Revokes the given sessions; sessions already revoked are left as they are. */
  async revokeSessions(sessionIds: string[], request: RevocationRequest): Promise<RevokedSessions> {
    const now = this.deps.clock.now();
    const revoked = await this.deps.db.$transaction(async (tx) => {
      const targets = await this.revokeWhere(tx, { id: { in: sessionIds } }, now, request.reason);
      await this.auditSessions(tx, targets, request);
      return targets;
    });
    await this.broadcast({ sessions: revoked.map((target) => target.id) });
    return { sessionIds: revoked.map((target) => target.id) };
  }

  /** Revokes the session that a refresh token belongs to; its whole token family stops working. */
  async revokeTokenFamily(refreshTokenId: string, request: RevocationRequest): Promise<RevokedSessions> {
    const token = await this.deps.db.refreshToken.findUnique({ where: { id: refreshTokenId }, select: { sessionId: true } });
    if (!token) throw new TollgateError('BAD_USER_INPUT', `refreshTokenId: no refresh token ${refreshTokenId}; take the id from a token.rotated or refresh.reuse_detected audit event.`, { field: 'refreshTokenId' });
    return this.revokeSessions([token.sessionId], request);
  }

  /**
   * Revokes every session of the user. Unless `keepSessionId` is given, also sets the user's "not
   * before" time, so every access token issued until now is rejected whatever session it belongs to.
   * Password changes pass the current session as `keepSessionId`; account deletion passes none.
   */
  async revokeUser(userId: string, request: RevocationRequest & { keepSessionId?: string; suspend?: boolean }): Promise<RevokedSessions> {
    const now = this.deps.clock.now();
    const setNotBefore = request.keepSessionId === undefined;

    const revoked = await this.deps.db.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId }, select: { id: true } });
      if (!user) throw new TollgateError('BAD_USER_INPUT', `userId: no user ${userId}.`, { field: 'userId' });
      if (setNotBefore || request.suspend) {
        await tx.user.update({ where: { id: userId }, data: { ...(setNotBefore ? { notBefore: now } : {}), ...(request.suspend ? { suspendedAt: now } : {}) } });
      }
      const targets = await this.revokeWhere(tx, { userId, ...(request.keepSessionId ? { NOT: { id: request.keepSessionId } } : {}) }, now, request.reason);
      await this.auditSessions(tx, targets, request);
      await this.deps.audit.record(
        { type: request.suspend ? 'user.suspended' : 'user.revoked', userId, ip: request.ip, actor: request.actor, reason: request.reason, data: { sessions: targets.length, notBefore: setNotBefore ? now.toISOString() : null } },
        tx,
      );
      return targets;
    });

    await this.broadcast({ sessions: revoked.map((target) => target.id), ...(setNotBefore ? { users: [{ id: userId, notBefore: notBeforeOf(now) }] } : {}) });
    return { sessionIds: revoked.map((target) => target.id) };
  }

  /** Lets a suspended user sign in again. Sessions revoked by the suspension stay revoked. */
  async restoreUser(userId: string, request: RevocationRequest): Promise<void> {
    await this.deps.db.$transaction(async (tx) => {
      const updated = await tx.user.updateMany({ where: { id: userId }, data: { suspendedAt: null } });
      if (updated.count === 0) throw new TollgateError('BAD_USER_INPUT', `userId: no user ${userId}.`, { field: 'userId' });
      await this.deps.audit.record({ type: 'user.restored', userId, ip: request.ip, actor: request.actor, reason: request.reason }, tx);
    });
  }

  /**
   * Suspends a device: revokes all its sessions, rejects every access token it was issued until now,
   * and refuses new sessions on it until it is restored.
   */
  async suspendDevice(deviceId: string, request: RevocationRequest): Promise<RevokedSessions> {
    const now = this.deps.clock.now();
    const revoked = await this.deps.db.$transaction(async (tx) => {
      const device = await tx.device.findUnique({ where: { id: deviceId }, select: { userId: true } });
      if (!device) throw new TollgateError('BAD_USER_INPUT', `deviceId: no device ${deviceId}.`, { field: 'deviceId' });
      await tx.device.update({ where: { id: deviceId }, data: { suspendedAt: now, suspendReason: request.reason } });
      const targets = await this.revokeWhere(tx, { deviceId }, now, request.reason);
      await this.auditSessions(tx, targets, request);
      await this.deps.audit.record({ type: 'device.suspended', userId: device.userId, deviceId, ip: request.ip, actor: request.actor, reason: request.reason, data: { sessions: targets.length } }, tx);
      return targets;
    });

    await this.broadcast({ sessions: revoked.map((target) => target.id), devices: [{ id: deviceId, notBefore: notBeforeOf(now) }] });
    return { sessionIds: revoked.map((target) => target.id) };
  }

  /** Lets a suspended device start sessions again. Sessions revoked by the suspension stay revoked. */
  async restoreDevice(deviceId: string, request: RevocationRequest): Promise<void> {
    await this.deps.db.$transaction(async (tx) => {
      const device = await tx.device.findUnique({ where: { id: deviceId }, select: { userId: true } });
      if (!device) throw new TollgateError('BAD_USER_INPUT', `deviceId: no device ${deviceId}.`, { field: 'deviceId' });
      await tx.device.update({ where: { id: deviceId }, data: { suspendedAt: null, suspendReason: null } });
      await this.deps.audit.record({ type: 'device.restored', userId: device.userId, deviceId, ip: request.ip, actor: request.actor, reason: request.reason }, tx);
    });
  }

  /** Promotes the next signing key and audits it; tokens signed by the retired key stay valid until they expire. */
  async rotateSigningKeys(request: RevocationRequest): Promise<{ activeKid: string; retiredKid: string | null }> {
    const rotation = await this.deps.ring.rotate();
    const result = { activeKid: rotation.activeKid, retiredKid: rotation.retiredKid ?? null };
    await this.deps.audit.record({ type: 'keys.rotated', actor: request.actor, ip: request.ip, reason: request.reason, data: result });
    return result;
  }

  /**
   * Takes a compromised signing key out of the ring on every instance and audits it. Every access
   * token it signed is rejected from each instance's next ring reload, which the broadcast triggers.
   */
  async revokeSigningKey(kid: string, request: RevocationRequest): Promise<{ activeKid: string; revokedKid: string; wasActive: boolean }> {
    const result = await this.deps.ring.revoke(kid);
    await this.deps.audit.record({ type: 'keys.revoked', actor: request.actor, ip: request.ip, reason: request.reason, data: { ...result } });
    return result;
  }

  /** Marks matching active sessions revoked and drops their grace results; returns the ones it changed. */
  private async revokeWhere(tx: Transaction, where: Prisma.SessionWhereInput, now: Date, reason: string) {
    const targets = await tx.session.findMany({ where: { ...where, revokedAt: null }, select: { id: true, userId: true, deviceId: true } });
    if (targets.length === 0) return targets;
    const ids = targets.map((target) => target.id);
    await tx.session.updateMany({ where: { id: { in: ids }, revokedAt: null }, data: { revokedAt: now, revokeReason: reason } });
    await tx.refreshToken.updateMany({ where: { sessionId: { in: ids }, graceResult: { not: null } }, data: { graceResult: null } });
    return targets;
  }

  private async auditSessions(tx: Transaction, targets: Array<{ id: string; userId: string; deviceId: string }>, request: RevocationRequest): Promise<void> {
    for (const target of targets) {
      await this.deps.audit.record({ type: 'session.revoked', userId: target.userId, sessionId: target.id, deviceId: target.deviceId, ip: request.ip, actor: request.actor, reason: request.reason }, tx);
    }
  }

  /**
   * Sends committed revocations to Redis and the other instances. PostgreSQL already stores them, so
   * a failure is reported as retryable: revoking again is harmless, and instances reload the view from
   * PostgreSQL when Redis comes back.
   */
  private async broadcast(message: RevocationMessage): Promise<void> {
    if (!message.sessions?.length && !message.devices?.length && !message.users?.length) return;
    try {
      await this.deps.revocation.publish(message);
    } catch (error) {
      this.deps.logger.error({ err: error, sessions: message.sessions?.length ?? 0 }, 'revocation committed to PostgreSQL but not broadcast through Redis');
      throw new TollgateError('SERVICE_UNAVAILABLE', 'The revocation was recorded but could not be broadcast: retry the request.', { retryAfterSeconds: 1 });
    }
  }
}
