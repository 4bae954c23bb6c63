import { AccountService } from './accounts/service.ts';
import { PasswordHasher } from './accounts/passwords.ts';
import { AccountSettings } from './accounts/settings.ts';
import { TotpService } from './accounts/totp.ts';
import { AuditChainer, AuditLog, auditMacKey } from './audit/index.ts';
import { createAuthenticator, type Authenticator } from './authn.ts';
import { LoginChallenges } from './authz/challenges.ts';
import { StepUpService } from './authz/stepup.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import { AttestationService } from './devices/attestation/index.ts';
import { DpopVerifier } from './devices/dpop.ts';
import { DeviceService } from './devices/service.ts';
import { TrustPolicy } from './devices/trust.ts';
import { DeviceTrustService } from './devices/trust-service.ts';
import type { Logger } from './logger.ts';
import { PaymentService } from './payments/index.ts';
import { attemptLimitsFrom } from './authz/attempts.ts';
import { createRiskEngine, type RiskEngine } from './risk/index.ts';
import { BulkRevocation } from './sessions/bulk.ts';
import { RevocationView } from './sessions/revocation.ts';
import { RevocationService } from './sessions/revoker.ts';
import { SessionService } from './sessions/service.ts';
import { RefreshSql } from './sessions/rotation-sql.ts';
import type { Database } from './store/db.ts';
import type { StateStore } from './store/state.ts';
import { AccessTokenService } from './tokens/access.ts';
import { SigningKeyRing } from './tokens/keyring.ts';

/** Scopes a password sign-in grants. */
export const defaultUserScopes = ['profile', 'sessions', 'payments:read', 'payments:write', 'account'];

export interface Services {
  config: Config;
  clock: Clock;
  logger: Logger;
  database: Database;
  state: StateStore;
  ring: SigningKeyRing;
  access: AccessTokenService;
  revocation: RevocationView;
  /** Operator revocations: sessions, token families, devices, users, signing keys. */
  revocations: RevocationService;
  bulkRevocations: BulkRevocation;
  audit: AuditLog;
  auditChainer: AuditChainer;
  sessions: SessionService;
  accounts: AccountService;
  settings: AccountSettings;
  totp: TotpService;
  /** Login challenges; `create` is how a login asks for a second step. */
  challenges: LoginChallenges;
  stepUp: StepUpService;
  payments: PaymentService;
  attestation: AttestationService;
  deviceTrust: DeviceTrustService;
  dpop: DpopVerifier;
  devices: DeviceService;
  risk: RiskEngine;
  hasher: PasswordHasher;
  authenticator: Authenticator;
}

/** Wires the services together and starts the ones that keep state in memory. */
export async function createServices(deps: { config: Config & { masterKey: Buffer }; clock: Clock; logger: Logger; database: Database; state: StateStore }): Promise<Services> {
  const { config, clock, logger, database, state } = deps;
  const db = database.prisma;
  const retentionSeconds = config.accessTokenTtlSeconds + config.clockSkewSeconds;

  const ring = new SigningKeyRing({ db, state, clock, logger, masterKey: config.masterKey, verificationOverlapSeconds: retentionSeconds });
  const access = new AccessTokenService({
    ring,
    clock,
    issuer: config.issuer,
    audience: config.audience,
    ttlSeconds: config.accessTokenTtlSeconds,
    clockSkewSeconds: config.clockSkewSeconds,
    cacheSize: config.tokenCacheSize,
  });
  const revocation = new RevocationView({ db, state, clock, logger, retentionSeconds, maxStalenessSeconds: config.revocationMaxStalenessSeconds });
  const macKey = auditMacKey(config.masterKey);
  const auditChainer = new AuditChainer({ db, logger, macKey });
  const audit = new AuditLog(db, logger, clock, macKey, () => auditChainer.notify());
  const trustPolicy = new TrustPolicy(config.devices.trustedAfterSeconds, config.devices.lifetimes);
  const deviceTrust = new DeviceTrustService({ db, state, clock, logger, audit, policy: trustPolicy });
  const dpop = new DpopVerifier({ clock, state, config: config.devices.dpop, masterKey: config.masterKey });
  const risk = await createRiskEngine({ config, db, state, clock, logger, audit, syncDeviceTrust: (deviceId) => deviceTrust.sync(deviceId) });
  const sessions = new SessionService({
    db,
    clock,
    logger,
    access,
    audit,
    revocation,
    dpop,
    trustPolicy,
    risk,
    refreshSql: new RefreshSql(database.pool),
    config: {
      idleSeconds: config.sessionIdleSeconds,
      absoluteSeconds: config.sessionAbsoluteSeconds,
      refreshGraceSeconds: config.refreshGraceSeconds,
      masterKey: config.masterKey,
      refreshMismatchRevokes: config.devices.refreshMismatchRevokes,
    },
  });
  const devices = new DeviceService({ db, clock, audit, sessions, deviceTrust });
  const hasher = new PasswordHasher(config.argon2);
  const challenges = new LoginChallenges({ state, clock, audit });
  const accounts = new AccountService({ db, clock, logger, hasher, sessions, audit, challenges, risk, defaultScopes: defaultUserScopes });
  const attemptLimits = attemptLimitsFrom(config.risk.attempts);
  const settings = new AccountSettings({ db, state, clock, audit, hasher, sessions, attemptLimits });
  const totp = new TotpService({ db, state, clock, audit, masterKey: config.masterKey, issuer: 'Tollgate', attemptLimits });
  const stepUp = new StepUpService({ db, state, clock, logger, audit, hasher, totp, sessions, accounts, challenges, attemptLimits });
  const payments = new PaymentService({ db, clock, audit });
  const attestation = new AttestationService({ db, state, clock, logger, audit, deviceTrust, config: config.attestation, clockSkewSeconds: config.clockSkewSeconds });
  const revocations = new RevocationService({ db, clock, logger, audit, revocation, ring });
  const bulkRevocations = new BulkRevocation({ db, clock, logger, audit, revocation, retentionSeconds });
  const authenticator = createAuthenticator({ access, revocation, dpop, deviceTrust });

  await ring.start();
  auditChainer.start();
  await revocation.start();
  await risk.start();
  await hasher.warmUp();

  return { config, clock, logger, database, state, ring, access, revocation, revocations, bulkRevocations, audit, auditChainer, sessions, accounts, settings, totp, challenges, stepUp, payments, attestation, deviceTrust, dpop, devices, risk, hasher, authenticator };
}

export async function stopServices(services: Services): Promise<void> {
  services.ring.stop();
  await services.auditChainer.stop();
}
