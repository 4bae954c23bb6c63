import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { sha256 } from '../crypto/index.ts';
import { registerDevice, type DeviceInput } from '../devices/registry.ts';
import { TollgateError } from '../errors.ts';
import type { LoginChallenges, StepUpChallenge } from '../authz/challenges.ts';
import type { Logger } from '../logger.ts';
import type { RiskLevel } from '../authz/principal.ts';
import type { RiskEngine } from '../risk/index.ts';
import type { RequestFacts, SessionService } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';
import type { TokenPair } from '../tokens/pair.ts';
import type { PasswordHasher } from './passwords.ts';

/** Lower-cases and NFC-normalises an email, so one mailbox is one account. */
export function normalizeEmail(email: string): string {
  return email.normalize('NFC').trim().toLowerCase();
}

export const emailSchema = z
  .string()
  .max(254)
  .transform(normalizeEmail)
  .pipe(z.email({ message: 'email is not a valid address' }));

/** NIST SP 800-63B: at least 8 characters; the upper bound keeps hashing cost bounded. */
export const passwordSchema = z.string().min(10, 'password must have at least 10 characters').max(256, 'password must have at most 256 characters');

export interface AccountServiceDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  hasher: PasswordHasher;
  sessions: SessionService;
  audit: AuditLog;
  /** Creates the StepUpChallenge a login answers when the account has a second factor. */
  challenges: Pick<LoginChallenges, 'create'>;
  /** Rate limits and risk decisions of sign-up and sign-in. */
  risk: RiskEngine;
  defaultScopes: string[];
}

export interface SignInResult {
  userId: string;
  sessionId: string;
  deviceId: string;
  pair: TokenPair;
}

export class AccountService {
  constructor(private readonly deps: AccountServiceDeps) {}

  async signUp(input: { email: string; password: string; displayName?: string | null; device: DeviceInput }, facts: RequestFacts): Promise<SignInResult> {
    await this.deps.risk.beforeSignUp(facts);
    const passwordHash = await this.deps.hasher.hash(input.password);
    const now = this.deps.clock.now();
    const userId = randomUUID();

    try {
      return await this.deps.db.$transaction(async (tx) => {
        await tx.user.create({ data: { id: userId, email: input.email, passwordHash, displayName: input.displayName ?? null, createdAt: now } });
        const device = await registerDevice(tx, this.deps.clock, userId, input.device);
        const { sessionId, pair } = await this.deps.sessions.start(
          { userId, deviceId: device.id, scopes: this.deps.defaultScopes, acr: 'aal1', amr: ['pwd'], authTime: now, jkt: device.jkt },
          facts,
          tx,
        );
        await this.deps.audit.record({ type: 'user.signed_up', userId, sessionId, deviceId: device.id, ip: facts.ip }, tx);
        return { userId, sessionId, deviceId: device.id, pair };
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') {
        throw new TollgateError('BAD_USER_INPUT', 'An account with this email already exists: sign in instead.', { field: 'email' });
      }
      throw error;
    }
  }

  /**
   * Verifies the password and starts a session, or answers a challenge for the second factor when
   * the account has a confirmed one. An unknown email and a wrong password produce the same error
   * after the same argon2id work.
   */
  async login(input: { email: string; password: string; device: DeviceInput }, facts: RequestFacts): Promise<SignInResult | StepUpChallenge> {
    const gate = await this.deps.risk.beforeLogin({ email: input.email, devicePublicKey: input.device.publicKey, facts });
    const user = await this.deps.db.user.findUnique({ where: { email: input.email }, select: { id: true, passwordHash: true, totpConfirmedAt: true } });
    const valid = await this.deps.hasher.verifyOrDummy(user?.passwordHash, input.password);

    if (!user || !valid) {
      await this.deps.risk.loginFailed(gate);
      await this.deps.audit.record({
        type: 'login.failed',
        userId: user?.id ?? null,
        ip: facts.ip,
        reason: user ? 'wrong_password' : 'unknown_account',
        data: { emailHash: sha256(input.email).toString('hex').slice(0, 32) },
      });
      throw new TollgateError('INVALID_CREDENTIALS');
    }

    const challenge = user.totpConfirmedAt
      ? (reasons: string[]) => this.deps.challenges.create({ userId: user.id, device: input.device, methods: ['TOTP'], reasons }, facts)
      : undefined;
    const verdict = await this.deps.risk.assessLogin(gate, { userId: user.id, challenge });
    if (verdict.kind === 'challenge') return verdict.challenge;
    if (challenge) return challenge(['second_factor_enrolled']);

    const result = await this.openSession(user.id, input.device, { acr: 'aal1', amr: ['pwd'], riskLevel: verdict.riskLevel }, facts);
    await this.deps.risk.loginSucceeded(gate, { userId: user.id, sessionId: result.sessionId, riskLevel: verdict.riskLevel, location: verdict.location });
    return result;
  }

  /** Registers the device and starts a session for a user whose authentication is complete. */
  async openSession(userId: string, deviceInput: DeviceInput, authentication: { acr: string; amr: string[]; riskLevel?: RiskLevel }, facts: RequestFacts): Promise<SignInResult> {
    const now = this.deps.clock.now();
    const result = await this.deps.db.$transaction(async (tx) => {
      const device = await registerDevice(tx, this.deps.clock, userId, deviceInput);
      const { sessionId, pair } = await this.deps.sessions.start(
        { userId, deviceId: device.id, scopes: this.deps.defaultScopes, acr: authentication.acr, amr: authentication.amr, authTime: now, jkt: device.jkt, riskLevel: authentication.riskLevel },
        facts,
        tx,
      );
      await this.deps.audit.record({ type: 'login.succeeded', userId, sessionId, deviceId: device.id, ip: facts.ip, data: { newDevice: device.isNew, amr: authentication.amr } }, tx);
      return { userId, sessionId, deviceId: device.id, pair };
    });
    // A second factor verifies the device: a suspension of its token issuance ends here. After the
    // transaction, because the device row stays locked until it commits.
    if (authentication.acr === 'aal2') await this.deps.risk.secondFactorVerified({ userId, deviceId: result.deviceId, method: authentication.amr.join(',') });
    return result;
  }
}
