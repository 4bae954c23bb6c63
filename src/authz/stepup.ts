import type { AccountService, SignInResult } from '../accounts/service.ts';
import type { PasswordHasher } from '../accounts/passwords.ts';
import type { TotpOutcome, TotpService } from '../accounts/totp.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestFacts, SessionService } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';
import type { TokenPair } from '../tokens/pair.ts';
import { challengeAttemptLimit, consumeAttempt, stepUpAttemptLimit, type AttemptLimits } from './attempts.ts';
import type { LoginChallenges, StepUpMethod } from './challenges.ts';
import type { Principal } from './principal.ts';

export interface StepUpServiceDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  hasher: PasswordHasher;
  totp: TotpService;
  sessions: SessionService;
  accounts: AccountService;
  challenges: LoginChallenges;
  /** Second-factor attempt limits; the built-in defaults when omitted. */
  attemptLimits?: AttemptLimits;
}

/** The authentication a verified step-up gives the session, from what the session had before. */
type Raise = (current: { acr: string; amr: string[] }) => { acr: string; amr: string[] };

const withMethod = (amr: string[], method: string) => (amr.includes(method) ? amr : [...amr, method]);

/**
 * Re-verifies a signed-in user (`stepUp`) and finishes logins that returned a challenge
 * (`completeLogin`).
 *
 * PASSWORD renews auth_time and keeps the session's acr: one factor, checked again, proves the
 * same person is still there but adds no second factor. TOTP renews auth_time and raises acr to
 * aal2 with `otp` in amr; the session's earlier password is the first factor. Both are persisted on
 * the session and rotate its refresh token through `SessionService.reauthenticate`, so refreshes
 * keep the new auth_time and never make it fresher.
 */
export class StepUpService {
  constructor(private readonly deps: StepUpServiceDeps) {}

  async stepUp(principal: Principal, input: { method: StepUpMethod; code: string }, facts: RequestFacts): Promise<TokenPair> {
    const ids = { userId: principal.userId, sessionId: principal.sessionId, deviceId: principal.deviceId, ip: facts.ip };
    await this.limit(`stepup:session:${principal.sessionId}`, this.deps.attemptLimits?.stepUp ?? stepUpAttemptLimit, ids);

    const raise = input.method === 'PASSWORD' ? await this.checkPassword(principal.userId, input.code) : await this.checkTotp(principal.userId, input.code);
    if (typeof raise === 'string') {
      await this.deps.audit.record({ type: 'stepup.failed', ...ids, reason: raise, data: { method: input.method } });
      throw rejection(raise);
    }

    const pair = await this.deps.sessions.reauthenticate(principal.sessionId, raise, facts);
    await this.deps.audit.record({ type: 'stepup.succeeded', ...ids, data: { method: input.method } });
    return pair;
  }

  private async checkPassword(userId: string, password: string): Promise<Raise | 'wrong_password'> {
    const user = await this.deps.db.user.findUnique({ where: { id: userId }, select: { passwordHash: true, deletedAt: true } });
    const storedHash = user && !user.deletedAt ? user.passwordHash : undefined;
    const valid = await this.deps.hasher.verifyOrDummy(storedHash, password);
    if (!valid) return 'wrong_password';
    return (current) => ({ acr: current.acr, amr: withMethod(current.amr, 'pwd') });
  }

  private async checkTotp(userId: string, code: string): Promise<Raise | Exclude<TotpOutcome, 'accepted'>> {
    const outcome = await this.deps.totp.verify(userId, code);
    if (outcome !== 'accepted') return outcome;
    return (current) => ({ acr: 'aal2', amr: withMethod(current.amr, 'otp') });
  }

  /**
   * Completes a login challenge with a TOTP code and starts the session with acr aal2 and amr
   * [pwd, otp]. Wrong codes count against the challenge; after too many it is discarded.
   */
  async completeLogin(input: { challengeId: string; method: StepUpMethod; code: string }, facts: RequestFacts): Promise<SignInResult> {
    const challenge = await this.deps.challenges.find(input.challengeId);
    if (!challenge) {
      throw new TollgateError('INVALID_CREDENTIALS', 'The login challenge is unknown, expired or already completed: sign in again.');
    }
    const ids = { userId: challenge.userId, ip: facts.ip };
    if (!challenge.methods.includes(input.method) || input.method !== 'TOTP') {
      throw new TollgateError('BAD_USER_INPUT', `input.method: this challenge accepts ${challenge.methods.join(', ')}.`, { field: 'input.method' });
    }

    try {
      await this.limit(`login-challenge:${challenge.challengeId}`, this.deps.attemptLimits?.challenge ?? challengeAttemptLimit, ids);
    } catch (error) {
      await this.deps.challenges.discard(challenge.challengeId);
      throw error;
    }

    const outcome = await this.deps.totp.verify(challenge.userId, input.code);
    if (outcome !== 'accepted') {
      await this.deps.audit.record({ type: 'stepup.failed', ...ids, reason: outcome, data: { method: input.method, challengeId: challenge.challengeId } });
      throw rejection(outcome);
    }
    if (!(await this.deps.challenges.claim(challenge.challengeId))) {
      throw new TollgateError('INVALID_CREDENTIALS', 'The login challenge was already completed: sign in again.');
    }

    const result = await this.deps.accounts.openSession(challenge.userId, challenge.device, { acr: 'aal2', amr: ['pwd', 'otp'] }, facts);
    await this.deps.audit.record({ type: 'stepup.succeeded', ...ids, sessionId: result.sessionId, deviceId: result.deviceId, data: { method: input.method, challengeId: challenge.challengeId } });
    return result;
  }

  private async limit(subject: string, limit: typeof stepUpAttemptLimit, ids: { userId: string; sessionId?: string; ip?: string | undefined }): Promise<void> {
    try {
      await consumeAttempt(this.deps, subject, limit);
    } catch (error) {
      // Logged rather than audited, so a client that keeps hitting the limit cannot grow the audit chain.
      this.deps.logger.warn({ event: 'stepup.rate_limited', userId: ids.userId, sessionId: ids.sessionId, subject }, 'step-up attempt rejected: rate limit reached');
      throw error;
    }
  }
}

function rejection(reason: 'wrong_password' | Exclude<TotpOutcome, 'accepted'>): TollgateError {
  switch (reason) {
    case 'wrong_password':
      return new TollgateError('INVALID_CREDENTIALS', 'The password is incorrect.');
    case 'wrong_code':
    case 'code_reused':
      return new TollgateError('INVALID_CREDENTIALS', 'The code is incorrect or was already used: enter the next code from the authenticator app.');
    case 'not_enrolled':
      return new TollgateError('BAD_USER_INPUT', 'input.method: TOTP is not set up for this account; call enrollTotp and confirmTotp first, or use PASSWORD.', { field: 'input.method' });
  }
}
