import type { AuditLog } from '../audit/index.ts';
import type { Principal } from '../authz/principal.ts';
import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { RequestFacts, SessionService } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';
import type { DeviceTrustService } from './trust-service.ts';

export interface DeviceServiceDeps {
  db: Db;
  clock: Clock;
  audit: AuditLog;
  sessions: SessionService;
  deviceTrust: DeviceTrustService;
}

/** A user's management of their own devices: list, rename, remove, confirm as trusted. */
export class DeviceService {
  constructor(private readonly deps: DeviceServiceDeps) {}

  /** Lists the user's devices that were not removed, most recently seen first. */
  list(userId: string) {
    return this.deps.db.device.findMany({ where: { userId, removedAt: null }, orderBy: { lastSeenAt: 'desc' } });
  }

  async rename(principal: Principal, deviceId: string, name: string, facts: RequestFacts) {
    await this.owned(principal.userId, deviceId);
    const device = await this.deps.db.device.update({ where: { id: deviceId }, data: { name } });
    await this.deps.audit.record({ type: 'device.renamed', userId: principal.userId, sessionId: principal.sessionId, deviceId, ip: facts.ip });
    return device;
  }

  /**
   * Removes a device: it leaves the user's list, its trust record drops to UNKNOWN, and every session
   * on it is revoked and broadcast. Repeating the call finishes a removal whose broadcast failed.
   */
  async remove(principal: Principal, deviceId: string, facts: RequestFacts): Promise<void> {
    const device = await this.owned(principal.userId, deviceId, { includeRemoved: true });
    if (device.removedAt === null) await this.deps.deviceTrust.markRemoved(deviceId, { actor: `user:${principal.userId}`, ip: facts.ip });

    const sessions = await this.deps.db.session.findMany({ where: { deviceId, revokedAt: null }, select: { id: true } });
    if (sessions.length === 0) return;
    await this.deps.sessions.revoke({
      userId: principal.userId,
      sessionIds: sessions.map((session) => session.id),
      reason: 'device_removed',
      facts,
      actorSessionId: principal.sessionId,
    });
  }

  /**
   * Records the user's confirmation that a device is theirs (`trustDevice`). The request must come
   * from a two-factor session (acr aal2), and the device must be attested and free of trust-lowering
   * integrity signals. It becomes TRUSTED once it has stayed so for the configured period.
   */
  async confirmTrusted(principal: Principal, deviceId: string, facts: RequestFacts) {
    if (principal.acr !== 'aal2') {
      throw new TollgateError('STEP_UP_REQUIRED', 'Confirming a device as trusted needs a second factor: call stepUp.', { acrValues: ['aal2'], maxAge: null, reason: 'authentication_too_weak' });
    }
    const device = await this.owned(principal.userId, deviceId);
    if (device.suspendedAt) throw new TollgateError('DEVICE_SUSPENDED', 'This device is suspended pending verification: it cannot be trusted until it is restored.');

    const trust = this.deps.deviceTrust.policy.trustOf(device, this.deps.clock.now());
    if (trust !== 'ATTESTED' && trust !== 'TRUSTED') {
      throw new TollgateError('DEVICE_TRUST_REQUIRED', `Only an attested device without integrity findings can be trusted; this device is ${trust}: attest it first.`, {
        requiredTrust: 'ATTESTED',
        currentTrust: trust,
      });
    }

    if (device.trustedAt === null) await this.deps.deviceTrust.confirm(deviceId, { actor: `user:${principal.userId}`, ip: facts.ip });
    return this.deps.db.device.findUniqueOrThrow({ where: { id: deviceId } });
  }

  /** Loads a device of `userId`; another user's device is reported exactly like a missing one. */
  private async owned(userId: string, deviceId: string, options: { includeRemoved?: boolean } = {}) {
    const device = await this.deps.db.device.findFirst({ where: { id: deviceId, userId, ...(options.includeRemoved ? {} : { removedAt: null }) } });
    if (!device) throw new TollgateError('BAD_USER_INPUT', 'id: no device with this id belongs to the signed-in user.', { field: 'id' });
    return device;
  }
}
