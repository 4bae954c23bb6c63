import type { JWK } from 'jose';
import { calculateJwkThumbprint } from 'jose';

import type { AuditEvent, AuditLog } from '../audit/index.ts';
import { epochSeconds, type Clock } from '../clock.ts';
import { riskRank, type Principal, type RiskLevel } from '../authz/principal.ts';
import { sha256 } from '../crypto/index.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';
import type { DecisionPoint, RiskConfig } from './config.ts';
import type { EdgeLocation, GeoLocator, GeoObservation } from './geo.ts';
import { clientSubject } from './ip.ts';
import type { RateLimits } from './limits.ts';
import { scoreSignals, type RiskDecision } from './score.ts';
import { RiskSignals, sessionRiskKey, type DeviceFacts, type LoginAttempt, type SignalSet } from './signals.ts';

/** Request facts the risk engine reads; the gateway sets them at the edge. */
export interface RiskFacts {
  ip?: string | undefined;
  /** `X-Device-Id`, when the app sent one. */
  deviceHint?: string | undefined;
  /** Location headers of a trusted edge proxy; never set for other peers. */
  edgeLocation?: EdgeLocation | undefined;
}

/** A second-factor challenge a sign-in returns instead of tokens (`StepUpChallenge`). */
export interface LoginChallenge {
  challengeId: string;
  methods: readonly string[];
  expiresAt: Date;
}

/** Creates the second-factor challenge of this sign-in, with the reasons it is challenged for. */
export type LoginChallenger<C extends LoginChallenge> = (reasons: string[]) => Promise<C>;

/** State carried from the checks before the password to the decision after it. */
export interface LoginGate {
  attempt: LoginAttempt;
  /** JWK thumbprint of the device key the sign-in presented, which identifies a known device. */
  deviceThumbprint: string | undefined;
  signals: SignalSet;
  facts: RiskFacts;
}

export type LoginVerdict<C extends LoginChallenge> = { kind: 'allow'; riskLevel: RiskLevel; location: GeoObservation | undefined } | { kind: 'challenge'; challenge: C };

export interface RiskEngineDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  config: RiskConfig;
  limits: RateLimits;
  geo: GeoLocator;
  /** How long a session's risk level is mirrored in the state store: the absolute session lifetime. */
  sessionLifetimeSeconds: number;
  /** Rewrites a device's trust record after its suspension changed, so the next request reads the new trust. */
  syncDeviceTrust?: (deviceId: string) => Promise<unknown>;
}

const deviceFactsSelect = { id: true, trust: true, integritySignals: true, suspendedAt: true } as const;

/**
 * Gathers signals at sign-in, at refresh and before fields of assessed tiers, scores them, and
 * carries out the decision: allow, step up, deny, or suspend token issuance to the device. Every
 * decision is written to the audit log as `risk.decision` with its signals and reasons.
 */
export class RiskEngine {
  readonly signals: RiskSignals;

  constructor(private readonly deps: RiskEngineDeps) {
    this.signals = new RiskSignals({ state: deps.state, clock: deps.clock, config: deps.config, geo: deps.geo });
  }

  get limits(): RateLimits {
    return this.deps.limits;
  }

  get geo(): GeoLocator {
    return this.deps.geo;
  }

  /** Replaces the geolocation source; tests use a fixed table. */
  useGeoLocator(geo: GeoLocator): void {
    this.deps.geo = geo;
    (this as { signals: RiskSignals }).signals = new RiskSignals({ state: this.deps.state, clock: this.deps.clock, config: this.deps.config, geo });
  }

  /** Sign-ups are limited per client IP (IPv6 per /64). */
  async beforeSignUp(facts: RiskFacts): Promise<void> {
    await this.deps.limits.consume('signUpIp', clientSubject(facts.ip));
  }

  /**
   * Runs before the password is checked: spends one attempt of the IP's and the account's limits,
   * records the attempt in the fan-out windows, and denies without checking the password when the
   * velocity and fan-out signals alone reach a deny decision.
   */
  async beforeLogin(input: { email: string; devicePublicKey?: JWK | null | undefined; facts: RiskFacts }): Promise<LoginGate> {
    const accountKey = sha256(`login:${input.email}`).toString('hex').slice(0, 32);
    const deviceThumbprint = input.devicePublicKey ? await thumbprintOrUndefined(input.devicePublicKey) : undefined;
    const attempt: LoginAttempt = { accountKey, ip: input.facts.ip, deviceKey: deviceThumbprint ?? input.facts.deviceHint };

    await this.deps.limits.consume('loginIp', clientSubject(input.facts.ip));
    await this.deps.limits.consume('loginAccount', accountKey);

    const signals = await this.measure(() => this.signals.loginAttempt(attempt), 'sign-in counters');
    const decision = scoreSignals('login', signals.fired, this.deps.config.policy);
    if (decision.action === 'deny' || decision.action === 'suspend') {
      await this.audit(decision, signals, { ip: input.facts.ip, stage: 'before_password' });
      throw riskDenied(decision);
    }
    return { attempt, deviceThumbprint, signals, facts: input.facts };
  }

  async loginFailed(gate: LoginGate): Promise<void> {
    // The sign-in already failed; a counter that could not be written must not hide that answer.
    await this.signals.recordFailedLogin(gate.attempt).catch((error: unknown) => this.deps.logger.warn({ err: error }, 'failed sign-in not counted: state store unreachable'));
  }

  /**
   * Decides a sign-in whose password was right. A device is known when the account registered its
   * key before, and a device without a key cannot be recognised, so it counts as new. Returns the
   * session's risk level, or the challenge that `challenge` creates when the account has a second
   * factor. Throws `RISK_DENIED`, or `DEVICE_SUSPENDED`, which carries a challenge that verifies
   * the device when the account has a second factor.
   */
  async assessLogin<C extends LoginChallenge>(gate: LoginGate, input: { userId: string; challenge: LoginChallenger<C> | undefined }): Promise<LoginVerdict<C>> {
    const known = gate.deviceThumbprint
      ? await this.deps.db.device.findFirst({ where: { userId: input.userId, publicKeyThumbprint: gate.deviceThumbprint }, select: deviceFactsSelect })
      : null;
    const ids = { userId: input.userId, deviceId: known?.id, ip: gate.facts.ip };
    if (known?.suspendedAt) {
      await this.auditSuspended('login', { ...ids, deviceId: known.id });
      throw await this.suspendedError(input.challenge);
    }

    const device: DeviceFacts = known ?? { id: 'unregistered', trust: 'UNKNOWN', integritySignals: [], suspendedAt: null };
    const set: SignalSet = { fired: [...gate.signals.fired], measured: { ...gate.signals.measured } };
    const location = await this.measure(() => this.signals.loginContext({ userId: input.userId, isNewDevice: known === null, device, ip: gate.facts.ip, edge: gate.facts.edgeLocation }, set), 'sign-in signals');
    const decision = scoreSignals('login', set.fired, this.deps.config.policy);

    switch (decision.action) {
      case 'allow':
        await this.audit(decision, set, ids);
        return { kind: 'allow', riskLevel: decision.level, location };
      case 'step_up': {
        if (input.challenge) {
          const challenge = await input.challenge(decision.reasons);
          await this.audit(decision, set, { ...ids, challengeId: challenge.challengeId });
          return { kind: 'challenge', challenge };
        }
        const fallback = this.deps.config.policy.stepUpUnavailable;
        await this.audit({ ...decision, action: fallback }, set, { ...ids, stepUp: 'no_second_factor' });
        if (fallback === 'deny') throw riskDenied(decision);
        return { kind: 'allow', riskLevel: decision.level, location };
      }
      case 'deny':
        await this.audit(decision, set, ids);
        throw riskDenied(decision);
      case 'suspend':
        await this.audit(decision, set, ids);
        // Only a registered device can be suspended; a new one is refused like a denial.
        if (!known) throw riskDenied(decision);
        await this.suspendDevice(known.id, decision.reasons.join(','), ids);
        throw await this.suspendedError(input.challenge);
    }
  }

  /** DEVICE_SUSPENDED, carrying a second-factor challenge whose completion restores the device. */
  private async suspendedError<C extends LoginChallenge>(challenge: LoginChallenger<C> | undefined): Promise<TollgateError> {
    if (!challenge) {
      return new TollgateError('DEVICE_SUSPENDED', 'Token issuance to this device is suspended: ask support to restore it.');
    }
    const created = await challenge(['device_suspended']);
    return new TollgateError('DEVICE_SUSPENDED', 'Token issuance to this device is suspended: call completeLogin with this challengeId and a second factor to restore it.', {
      challengeId: created.challengeId,
      methods: created.methods,
      expiresAt: created.expiresAt.toISOString(),
    });
  }

  /** Runs once the session of an allowed sign-in exists. */
  async loginSucceeded(gate: LoginGate, input: { userId: string; sessionId: string; riskLevel: RiskLevel; location: GeoObservation | undefined }): Promise<void> {
    // The session exists and its level is in PostgreSQL; a state store failure here is logged only.
    await Promise.all([
      this.deps.limits.reset('loginAccount', gate.attempt.accountKey),
      this.signals.rememberLocation(input.userId, input.location),
      this.mirrorSessionRisk(input.sessionId, input.riskLevel),
    ]).catch((error: unknown) => this.deps.logger.warn({ err: error, userId: input.userId, sessionId: input.sessionId }, 'sign-in state not written: state store unreachable'));
  }

  /**
   * Decides a refresh of a valid session before it rotates. Returns the session's risk level after
   * this refresh; throws `RATE_LIMITED`, `DEVICE_SUSPENDED` or `RISK_DENIED`. A refresh cannot step
   * up, so a step-up decision raises the session's level instead and lets tier policies ask later.
   */
  async assessRefresh(
    input: { userId: string; sessionId: string; deviceId: string; sessionRiskLevel: string; facts: RiskFacts; tokenKey?: string; device: DeviceFacts },
    pending?: AuditEvent[],
  ): Promise<RiskLevel> {
    const ids = { userId: input.userId, sessionId: input.sessionId, deviceId: input.deviceId, ip: input.facts.ip };
    await this.deps.limits.consume('refreshDevice', input.deviceId);

    const { device } = input;
    if (device.suspendedAt) {
      await this.auditSuspended('refresh', ids);
      throw new TollgateError('DEVICE_SUSPENDED', 'Token issuance to this device is suspended: verify it with a second factor or ask support to restore it.');
    }

    const set: SignalSet = { fired: [], measured: {} };
    const location = await this.measure(() => this.signals.refreshContext({ userId: input.userId, device, ip: input.facts.ip, edge: input.facts.edgeLocation, tokenKey: input.tokenKey }, set), 'refresh signals');
    const decision = scoreSignals('refresh', set.fired, this.deps.config.policy);
    // With `pending`, an allowed refresh's decision is written by the rotation's statement instead.
    if (pending && decision.action === 'allow') pending.push(this.decisionEvent(decision, set, ids));
    else await this.audit(decision, set, ids);

    if (decision.action === 'deny') throw riskDenied(decision);
    if (decision.action === 'suspend') {
      await this.suspendDevice(input.deviceId, decision.reasons.join(','), ids);
      throw new TollgateError('DEVICE_SUSPENDED', 'Token issuance to this device was suspended because its refreshes looked risky: verify it with a second factor or ask support to restore it.');
    }

    await this.signals.rememberLocation(input.userId, location);
    const current = isLevel(input.sessionRiskLevel) ? input.sessionRiskLevel : 'LOW';
    if (riskRank(decision.level) <= riskRank(current)) return current;
    await this.setSessionRisk(input.sessionId, decision.level);
    return decision.level;
  }

  /**
   * Decides a field of an assessed tier for the request's principal. Returns undefined to allow,
   * or the field's error: `STEP_UP_REQUIRED` unless the principal stepped up recently,
   * `RISK_DENIED`, or `DEVICE_SUSPENDED`.
   */
  async assessField(principal: Principal, coordinate: string, facts: RiskFacts): Promise<TollgateError | undefined> {
    const ids = { userId: principal.userId, sessionId: principal.sessionId, deviceId: principal.deviceId, ip: facts.ip };
    const device = await this.deps.db.device.findUnique({ where: { id: principal.deviceId }, select: deviceFactsSelect });

    const set: SignalSet = { fired: [], measured: { field: coordinate } };
    await this.measure(() => this.signals.sensitiveContext({ userId: principal.userId, coordinate, sessionRiskLevel: principal.riskLevel }, set), 'field signals');
    // The principal's trust is what the tier policies judged; the row adds the integrity flags.
    this.signals.deviceSignals(set, { id: principal.deviceId, trust: principal.deviceTrust, integritySignals: device?.integritySignals ?? [], suspendedAt: null });
    const decision = scoreSignals('sensitive', set.fired, this.deps.config.policy);

    if (decision.action === 'step_up' && this.steppedUpRecently(principal)) {
      await this.audit({ ...decision, action: 'allow' }, set, { ...ids, stepUp: 'recent' });
      await this.signals.markFieldUsed(principal.userId, coordinate);
      return undefined;
    }
    await this.audit(decision, set, ids);

    switch (decision.action) {
      case 'allow':
        await this.signals.markFieldUsed(principal.userId, coordinate);
        return undefined;
      case 'step_up':
        return new TollgateError('STEP_UP_REQUIRED', 'This field needs a recent second factor because the request looks unusual: call stepUp.', {
          acrValues: ['aal2'],
          maxAge: this.deps.config.stepUpMaxAgeSeconds,
          reason: 'risk',
          reasons: decision.reasons,
        });
      case 'deny':
        return riskDenied(decision);
      case 'suspend':
        await this.suspendDevice(principal.deviceId, decision.reasons.join(','), ids);
        return new TollgateError('DEVICE_SUSPENDED', 'Token issuance to this device was suspended: verify it with a second factor or ask support to restore it.');
    }
  }

  private steppedUpRecently(principal: Principal): boolean {
    const age = epochSeconds(this.deps.clock.now()) - principal.authTime;
    return principal.acr === 'aal2' && age <= this.deps.config.stepUpMaxAgeSeconds;
  }

  /** Stops token issuance to a device until a second factor or an operator restores it. */
  async suspendDevice(deviceId: string, reason: string, ids: { userId?: string; sessionId?: string; ip?: string | undefined } = {}): Promise<void> {
    await this.deps.db.device.update({ where: { id: deviceId }, data: { suspendedAt: this.deps.clock.now(), suspendReason: reason.slice(0, 200) } });
    await this.deps.syncDeviceTrust?.(deviceId);
    await this.deps.audit.record({ type: 'device.suspended', userId: ids.userId, sessionId: ids.sessionId, deviceId, ip: ids.ip, reason });
  }

  /**
   * Restores token issuance to a suspended device, after a second factor (`method`, e.g. `otp`) or
   * an operator (`actor`). Returns whether the device was suspended.
   */
  async restoreDevice(deviceId: string, by: { method?: string; actor?: string; userId?: string; sessionId?: string }): Promise<boolean> {
    const result = await this.deps.db.device.updateMany({ where: { id: deviceId, suspendedAt: { not: null } }, data: { suspendedAt: null, suspendReason: null } });
    if (result.count === 0) return false;
    await this.deps.syncDeviceTrust?.(deviceId);
    await this.deps.audit.record({
      type: 'device.restored',
      userId: by.userId,
      sessionId: by.sessionId,
      deviceId,
      reason: by.method ? 'second_factor' : 'operator',
      data: { method: by.method, actor: by.actor },
    });
    return true;
  }

  /**
   * Records a passed second factor on a session: its risk level returns to LOW and a suspended
   * device is restored.
   */
  async secondFactorVerified(input: { userId: string; sessionId?: string; deviceId: string; method: string }): Promise<void> {
    if (input.sessionId) await this.setSessionRisk(input.sessionId, 'LOW');
    await this.restoreDevice(input.deviceId, { method: input.method, userId: input.userId, sessionId: input.sessionId });
  }

  /** Writes a session's risk level to PostgreSQL and to its mirror in the state store. */
  async setSessionRisk(sessionId: string, level: RiskLevel): Promise<void> {
    await this.deps.db.session.update({ where: { id: sessionId }, data: { riskLevel: level } });
    await this.mirrorSessionRisk(sessionId, level);
  }

  /** Mirrors a level above LOW; a missing mirror reads as LOW, so LOW needs no key. */
  private async mirrorSessionRisk(sessionId: string, level: RiskLevel): Promise<void> {
    if (level === 'LOW') {
      await this.deps.state.del(sessionRiskKey(sessionId));
      return;
    }
    await this.deps.state.set(sessionRiskKey(sessionId), level, this.deps.sessionLifetimeSeconds);
  }

  /**
   * Runs a read or write of the signal counters. Without them no decision can be taken, so a state
   * store failure rejects the request as retryable instead of deciding blind.
   */
  private async measure<T>(work: () => Promise<T>, what: string): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.deps.logger.error({ err: error }, `${what} unavailable: state store unreachable`);
      throw new TollgateError('SERVICE_UNAVAILABLE', undefined, { retryAfterSeconds: 1 });
    }
  }

  /**
   * Loads the raised session risk levels into the state store, now and whenever Redis connects
   * again, since a restarted Redis has lost them.
   * NOTE: a Redis flushed without a reconnect keeps serving LOW for raised sessions until restart.
   */
  async start(): Promise<void> {
    this.deps.state.onConnectionChange?.((connected) => {
      if (!connected) return;
      this.reloadSessionRisk().catch((error: unknown) => this.deps.logger.error({ err: error }, 'session risk reload failed'));
    });
    await this.reloadSessionRisk().catch((error: unknown) => this.deps.logger.warn({ err: error }, 'session risk levels not loaded into Redis at start'));
  }

  /**
   * Rewrites the mirrors of sessions above LOW from PostgreSQL, after Redis lost its data. A
   * missing mirror reads as LOW, so only raised levels need rewriting.
   */
  async reloadSessionRisk(): Promise<void> {
    const now = this.deps.clock.now();
    const raised = await this.deps.db.session.findMany({
      where: { riskLevel: { not: 'LOW' }, revokedAt: null, absoluteExpiresAt: { gt: now } },
      select: { id: true, riskLevel: true, absoluteExpiresAt: true },
    });
    await this.deps.state.setMany(
      raised.map((session) => ({ key: sessionRiskKey(session.id), value: session.riskLevel, ttlSeconds: Math.max(1, (session.absoluteExpiresAt.getTime() - now.getTime()) / 1000) })),
    );
    if (raised.length > 0) this.deps.logger.info({ sessions: raised.length }, 'session risk levels reloaded from PostgreSQL');
  }

  private async auditSuspended(point: DecisionPoint, ids: { userId?: string; sessionId?: string; deviceId: string; ip?: string | undefined }): Promise<void> {
    await this.deps.audit.record({
      type: 'risk.decision',
      ...ids,
      reason: 'device_suspended',
      data: { point, level: 'HIGH', action: 'suspend', score: null, reasons: ['device_suspended'] },
    });
  }

  private async audit(decision: RiskDecision, set: SignalSet, ids: DecisionIds): Promise<void> {
    await this.deps.audit.record(this.decisionEvent(decision, set, ids));
  }

  private decisionEvent(decision: RiskDecision, set: SignalSet, ids: DecisionIds): AuditEvent {
    const { userId, sessionId, deviceId, ip, ...context } = ids;
    return {
      type: 'risk.decision',
      userId,
      sessionId,
      deviceId,
      ip,
      reason: `${decision.level.toLowerCase()}:${decision.action}`,
      data: {
        point: decision.point,
        level: decision.level,
        action: decision.action,
        score: decision.score,
        reasons: decision.reasons,
        signals: set.fired.map((signal) => ({ name: signal.name, ...signal.detail })),
        measured: set.measured,
        ...context,
      },
    };
  }
}

/** Ids recorded with a risk decision, and any context members for its data. */
type DecisionIds = { userId?: string; sessionId?: string; deviceId?: string; ip?: string | undefined; [key: string]: unknown };

function riskDenied(decision: RiskDecision): TollgateError {
  return new TollgateError('RISK_DENIED', `The request was denied because its risk is ${decision.level}: ${decision.reasons.join(', ')}.`, { reasons: decision.reasons });
}

function isLevel(value: string): value is RiskLevel {
  return value === 'LOW' || value === 'MEDIUM' || value === 'HIGH';
}

async function thumbprintOrUndefined(jwk: JWK): Promise<string | undefined> {
  try {
    return await calculateJwkThumbprint(jwk, 'sha256');
  } catch {
    return undefined;
  }
}
