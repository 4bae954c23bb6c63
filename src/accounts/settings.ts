import type { AuditLog } from '../audit/index.ts';
import { consumeAttempt, stepUpAttemptLimit, type AttemptLimits } from '../authz/attempts.ts';
import type { Clock } from '../clock.ts';
import { sha256 } from '../crypto/index.ts';
import { TollgateError } from '../errors.ts';
import type { RequestFacts, SessionService } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';
import type { PasswordHasher } from './passwords.ts';

export interface AccountSettingsDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  audit: AuditLog;
  hasher: PasswordHasher;
  sessions: SessionService;
  /** Second-factor attempt limits; the built-in defaults when omitted. */
  attemptLimits?: AttemptLimits;
}

/** The signed-in user a settings change applies to. */
export interface Actor {
  userId: string;
  sessionId: string;
  deviceId: string;
}

/** A short, non-reversible fingerprint of an email for audit rows, which must not hold the address. */
function emailFingerprint(email: string): string {
  return sha256(email).toString('hex').slice(0, 32);
}

/**
 * Profile and credential changes of the signed-in user. The resolvers' tiers decide who may call
 * these; the methods check what only the data can tell (the current password, a taken email).
 */
export class AccountSettings {
  constructor(private readonly deps: AccountSettingsDeps) {}

  async updateProfile(actor: Actor, displayName: string): Promise<void> {
    await this.deps.db.user.update({ where: { id: actor.userId }, data: { displayName } });
  }

  /** Changes the sign-in email; throws BAD_USER_INPUT when another account uses it. */
  async changeEmail(actor: Actor, newEmail: string, facts: RequestFacts): Promise<void> {
    try {
      await this.deps.db.user.update({ where: { id: actor.userId }, data: { email: newEmail } });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') {
        throw new TollgateError('BAD_USER_INPUT', 'newEmail: another account uses this email; choose another address.', { field: 'newEmail' });
      }
      throw error;
    }
    await this.deps.audit.record({ type: 'account.email_changed', ...actor, ip: facts.ip, data: { emailHash: emailFingerprint(newEmail) } });
  }

  /**
   * Verifies the current password, stores the new one and revokes every other session of the user,
   * so a thief holding another session loses it. Returns how many sessions were revoked.
   */
  async changePassword(actor: Actor, input: { currentPassword: string; newPassword: string }, facts: RequestFacts): Promise<number> {
    await consumeAttempt(this.deps, `stepup:session:${actor.sessionId}`, this.deps.attemptLimits?.stepUp ?? stepUpAttemptLimit);
    const user = await this.deps.db.user.findUniqueOrThrow({ where: { id: actor.userId }, select: { passwordHash: true } });
    if (!(await this.deps.hasher.verifyOrDummy(user.passwordHash, input.currentPassword))) {
      await this.deps.audit.record({ type: 'account.password_change_failed', ...actor, ip: facts.ip, reason: 'wrong_password' });
      throw new TollgateError('INVALID_CREDENTIALS', 'input.currentPassword: the current password is incorrect.');
    }
    if (input.newPassword === input.currentPassword) {
      throw new TollgateError('BAD_USER_INPUT', 'input.newPassword: must differ from the current password.', { field: 'input.newPassword' });
    }

    const passwordHash = await this.deps.hasher.hash(input.newPassword);
    await this.deps.db.user.update({ where: { id: actor.userId }, data: { passwordHash } });
    const revoked = await this.deps.sessions.revoke({ userId: actor.userId, keepSessionId: actor.sessionId, reason: 'password_changed', facts, actorSessionId: actor.sessionId });
    await this.deps.audit.record({ type: 'account.password_changed', ...actor, ip: facts.ip, data: { revokedSessions: revoked } });
    return revoked;
  }

  /**
   * Revokes every session of the user, the current one included, then removes the account's
   * personal data and payment methods. The row stays, marked deleted, so revoked sessions and
   * transactions keep their user; its email is freed for a new sign-up.
   */
  async deleteAccount(actor: Actor, facts: RequestFacts): Promise<void> {
    const revoked = await this.deps.sessions.revoke({ userId: actor.userId, reason: 'account_deleted', facts, actorSessionId: actor.sessionId });
    const now = this.deps.clock.now();

    await this.deps.db.$transaction(async (tx) => {
      await tx.paymentMethod.deleteMany({ where: { userId: actor.userId } });
      await tx.user.update({
        where: { id: actor.userId },
        data: {
          email: `deleted-${actor.userId}@deleted.invalid`,
          displayName: null,
          // Not an argon2 hash, so no password ever verifies against it.
          passwordHash: 'deleted',
          totpSecretEncrypted: null,
          totpConfirmedAt: null,
          totpLastStep: null,
          deletedAt: now,
        },
      });
      await this.deps.audit.record({ type: 'account.deleted', ...actor, ip: facts.ip, data: { revokedSessions: revoked } }, tx);
    });
  }
}
