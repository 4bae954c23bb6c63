import { Secret, TOTP } from 'otpauth';

import type { AuditLog } from '../audit/index.ts';
import { consumeAttempt, stepUpAttemptLimit, type AttemptLimits } from '../authz/attempts.ts';
import type { Clock } from '../clock.ts';
import { open, seal } from '../crypto/index.ts';
import { TollgateError } from '../errors.ts';
import type { RequestFacts } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';

/**
 * TOTP (RFC 6238) as authenticator apps implement it: HMAC-SHA-1, 6 digits, 30-second time steps.
 * A code is accepted one step early or late, for clock drift between phone and server, and only
 * once: the last accepted step is stored and a code for that step or an earlier one is rejected
 * (RFC 6238 §5.2).
 */
const totpSettings = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const driftSteps = 1;
/** 160-bit secrets, the HMAC-SHA-1 key length RFC 4226 §4 recommends. */
const secretBytes = 20;
/** How long an enrolment waits for its confirming code. */
export const totpEnrollmentSeconds = 600;

const codePattern = /^[0-9]{6}$/;

export function newTotpSecret(): string {
  return new Secret({ size: secretBytes }).base32;
}

/** Builds the `otpauth://totp/...` URI that authenticator apps read from a QR code. */
export function otpauthUri(secret: string, account: string, issuer: string): string {
  return new TOTP({ ...totpSettings, issuer, label: account, secret: Secret.fromBase32(secret) }).toString();
}

/** Returns the code an authenticator app shows at `at`. */
export function totpCode(secret: string, at: Date): string {
  return TOTP.generate({ ...totpSettings, secret: Secret.fromBase32(secret), timestamp: at.getTime() });
}

/** Returns the time step a code belongs to, within the drift window around `now`, or undefined. */
export function matchTotpStep(secret: string, code: string, now: Date): number | undefined {
  if (!codePattern.test(code)) return undefined;
  const timestamp = now.getTime();
  const delta = TOTP.validate({ ...totpSettings, secret: Secret.fromBase32(secret), token: code, timestamp, window: driftSteps });
  if (delta === null) return undefined;
  return TOTP.counter({ period: totpSettings.period, timestamp }) + delta;
}

export type TotpOutcome = 'accepted' | 'wrong_code' | 'code_reused' | 'not_enrolled';

export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
  expiresAt: Date;
}

export interface TotpServiceDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  audit: AuditLog;
  masterKey: Buffer;
  /** Issuer shown in authenticator apps. */
  issuer: string;
  /** Second-factor attempt limits; the built-in defaults when omitted. */
  attemptLimits?: AttemptLimits;
}

const pendingKey = (sessionId: string) => `totp:pending:${sessionId}`;
const pendingContext = (sessionId: string) => `totp-pending:${sessionId}`;
const secretContext = (userId: string) => `totp-secret:${userId}`;

/**
 * TOTP enrolment and verification. Secrets are sealed under the master key at rest, bound to their
 * user (or, while pending, to the enrolling session) by the associated data. A pending secret lives
 * in the state store until confirmed, so re-enrolling never disturbs a confirmed secret.
 */
export class TotpService {
  constructor(private readonly deps: TotpServiceDeps) {}

  /** Creates a pending secret for the session's user; `confirm` makes it the account's second factor. */
  async enroll(owner: { userId: string; sessionId: string }, facts: RequestFacts): Promise<TotpEnrollment> {
    const user = await this.deps.db.user.findUniqueOrThrow({ where: { id: owner.userId }, select: { email: true } });
    const secret = newTotpSecret();
    const expiresAt = new Date(this.deps.clock.now().getTime() + totpEnrollmentSeconds * 1000);

    const sealed = seal(this.deps.masterKey, secret, pendingContext(owner.sessionId));
    await this.deps.state.set(pendingKey(owner.sessionId), sealed.toString('base64'), totpEnrollmentSeconds);
    await this.deps.audit.record({ type: 'totp.enrollment_started', userId: owner.userId, sessionId: owner.sessionId, ip: facts.ip });

    return { secret, otpauthUri: otpauthUri(secret, user.email, this.deps.issuer), expiresAt };
  }

  /**
   * Confirms the session's pending secret with a code from it. Returns false for a wrong code;
   * throws BAD_USER_INPUT when nothing is pending. Attempts share the session's step-up limit.
   */
  async confirm(owner: { userId: string; sessionId: string }, code: string, facts: RequestFacts): Promise<boolean> {
    await consumeAttempt(this.deps, `stepup:session:${owner.sessionId}`, this.deps.attemptLimits?.stepUp ?? stepUpAttemptLimit);
    const pending = await this.deps.state.get(pendingKey(owner.sessionId));
    if (pending === null) {
      throw new TollgateError('BAD_USER_INPUT', 'No TOTP enrolment is pending for this session, or it expired: call enrollTotp first.', { field: 'code' });
    }
    const secret = open(this.deps.masterKey, Buffer.from(pending, 'base64'), pendingContext(owner.sessionId)).toString('utf8');
    const now = this.deps.clock.now();
    const step = matchTotpStep(secret, code, now);
    if (step === undefined) {
      await this.deps.audit.record({ type: 'totp.confirm_failed', userId: owner.userId, sessionId: owner.sessionId, ip: facts.ip, reason: 'wrong_code' });
      return false;
    }

    await this.deps.db.user.update({
      where: { id: owner.userId },
      data: { totpSecretEncrypted: new Uint8Array(seal(this.deps.masterKey, secret, secretContext(owner.userId))), totpConfirmedAt: now, totpLastStep: BigInt(step) },
    });
    await this.deps.state.del(pendingKey(owner.sessionId));
    await this.deps.audit.record({ type: 'totp.confirmed', userId: owner.userId, sessionId: owner.sessionId, ip: facts.ip });
    return true;
  }

  /** Returns whether the user has a confirmed TOTP secret. */
  async isEnrolled(userId: string): Promise<boolean> {
    const user = await this.deps.db.user.findUnique({ where: { id: userId }, select: { totpConfirmedAt: true } });
    return user?.totpConfirmedAt != null;
  }

  /**
   * Verifies a code against the user's confirmed secret and, when it matches a step later than the
   * last accepted one, records that step. The conditional update makes two concurrent requests
   * with one code accept it once.
   */
  async verify(userId: string, code: string): Promise<TotpOutcome> {
    const user = await this.deps.db.user.findUnique({ where: { id: userId }, select: { totpSecretEncrypted: true, totpConfirmedAt: true } });
    if (!user?.totpSecretEncrypted || !user.totpConfirmedAt) return 'not_enrolled';

    const secret = open(this.deps.masterKey, user.totpSecretEncrypted, secretContext(userId)).toString('utf8');
    const step = matchTotpStep(secret, code, this.deps.clock.now());
    if (step === undefined) return 'wrong_code';

    const accepted = await this.deps.db.user.updateMany({
      where: { id: userId, OR: [{ totpLastStep: null }, { totpLastStep: { lt: BigInt(step) } }] },
      data: { totpLastStep: BigInt(step) },
    });
    return accepted.count === 1 ? 'accepted' : 'code_reused';
  }
}
