import type { AuditLog } from '../../audit/index.ts';
import type { DeviceTrust } from '../../authz/principal.ts';
import type { Clock } from '../../clock.ts';
import { TollgateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { RequestFacts } from '../../sessions/service.ts';
import type { Db } from '../../store/db.ts';
import type { StateStore } from '../../store/state.ts';
import { attestationPassed, deviceTrustSelect } from '../trust.ts';
import type { DeviceTrustService } from '../trust-service.ts';
import { verifyAppAttestAssertion } from './app-attest-assertion.ts';
import { AppAttestVerifier } from './app-attest.ts';
import { AttestationChallenges, type ChallengeBinding, type IssuedChallenge } from './challenges.ts';
import type { AttestationConfig } from './config.ts';
import { PlayIntegrityVerifier } from './play-integrity.ts';
import type { AttestationEvidence, AttestationFailureReason, AttestationKind, AttestationVerifier, IntegritySignal } from './types.ts';

export interface AttestationServiceDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  /** Records verdicts on the device and recomputes its trust. */
  deviceTrust: DeviceTrustService;
  config: AttestationConfig;
  /** Tolerated clock difference for evidence timestamps, in seconds. */
  clockSkewSeconds: number;
}

/** The caller: the signed-in user, on the device and session of the access token. */
export interface AttestationCaller extends ChallengeBinding {
  userId: string;
}

export interface AttestationOutcome {
  status: 'PASSED' | 'FAILED';
  reason: AttestationFailureReason | null;
  integritySignals: IntegritySignal[];
  trust: DeviceTrust;
  expiresAt: Date | null;
}

export interface AssertionInput {
  challenge: string;
  assertion: string;
}

const kindNames: Record<AttestationKind, string> = { PLAY_INTEGRITY: 'Play Integrity', APP_ATTEST: 'App Attest' };

function buildVerifiers(deps: AttestationServiceDeps): AttestationVerifier[] {
  const verifiers: AttestationVerifier[] = [];
  const { playIntegrity, appAttest } = deps.config;
  if (playIntegrity) verifiers.push(new PlayIntegrityVerifier({ ...playIntegrity, clockSkewSeconds: deps.clockSkewSeconds }, deps.clock));
  if (appAttest) verifiers.push(new AppAttestVerifier(appAttest, deps.clock));
  return verifiers;
}

/**
 * Issues attestation challenges, runs the verifier for the evidence kind, and records the result on
 * the device. Verifiers are pure, and this service owns the challenge store and persistence.
 */
export class AttestationService {
  private readonly challenges: AttestationChallenges;
  private readonly verifiers: Map<AttestationKind, AttestationVerifier>;

  constructor(private readonly deps: AttestationServiceDeps) {
    this.challenges = new AttestationChallenges(deps.state, deps.clock, deps.config.challengeTtlSeconds);
    this.verifiers = new Map(buildVerifiers(deps).map((verifier) => [verifier.kind, verifier]));
  }

  issueChallenge(caller: AttestationCaller): Promise<IssuedChallenge> {
    return this.challenges.issue(caller);
  }

  /** Verifies attestation evidence and records the verdict. The challenge is consumed whatever the outcome. */
  async attest(caller: AttestationCaller, evidence: AttestationEvidence, facts: RequestFacts): Promise<AttestationOutcome> {
    const verifier = this.verifiers.get(evidence.kind);
    if (!verifier) {
      throw new TollgateError('BAD_USER_INPUT', `evidence.kind: ${kindNames[evidence.kind]} attestation is not configured on this gateway. Send another kind of evidence.`, { field: 'evidence.kind' });
    }

    const challengeProblem = await this.challenges.consume(evidence.challenge, caller);
    if (challengeProblem) return this.rejectChallenge(caller, evidence.kind, challengeProblem, facts);

    const verdict = await verifier.verify(evidence, { challenge: evidence.challenge, validitySeconds: this.deps.config.validitySeconds });
    // The device-trust service stores the verdict, recomputes trust and audits device.attested or
    // device.attestation_failed with the kind, reason and signals (never the evidence or the key).
    const trust = await this.deps.deviceTrust.recordAttestation(caller.deviceId, verdict, { ip: facts.ip });

    if (!verdict.passed) return { status: 'FAILED', reason: verdict.reason, integritySignals: verdict.signals, trust, expiresAt: null };
    return { status: 'PASSED', reason: null, integritySignals: verdict.signals, trust, expiresAt: verdict.expiresAt };
  }

  /**
   * Verifies an App Attest assertion over the challenge (clientData is the challenge's UTF-8 bytes)
   * and stores its counter. A passing assertion from a device whose App Attest attestation passed
   * extends the attestation by the configured validity. A failure leaves the device unchanged.
   */
  async assert(caller: AttestationCaller, input: AssertionInput, facts: RequestFacts): Promise<AttestationOutcome> {
    const appId = this.deps.config.appAttest?.appId;
    if (!appId) throw new TollgateError('BAD_USER_INPUT', 'App Attest is not configured on this gateway, so assertions cannot be verified.', { field: 'input' });

    const challengeProblem = await this.challenges.consume(input.challenge, caller);
    if (challengeProblem) return this.rejectAssertion(caller, challengeProblem, facts);

    const device = await this.deps.db.device.findUniqueOrThrow({ where: { id: caller.deviceId } });
    if (!device.appAttestKeyId || !device.appAttestPublicKey) return this.rejectAssertion(caller, 'device_not_attested', facts);

    const verdict = verifyAppAttestAssertion({
      assertion: input.assertion,
      clientData: Buffer.from(input.challenge, 'utf8'),
      publicKey: device.appAttestPublicKey,
      previousCounter: Number(device.appAttestCounter ?? -1n),
      appId,
    });
    if (!verdict.passed) return this.rejectAssertion(caller, verdict.reason, facts);

    const now = this.deps.clock.now();
    const extendsAttestation = device.attestationKind === 'APP_ATTEST' && device.attestationStatus === attestationPassed;
    const attestationExpiresAt = extendsAttestation ? new Date(now.getTime() + this.deps.config.validitySeconds * 1000) : device.attestationExpiresAt;

    // The counter condition makes this update decide between concurrent assertions. Of two with the
    // same counter, only the first to commit still matches the row.
    const updated = await this.deps.db.device.updateMany({
      where: { id: caller.deviceId, appAttestKeyId: device.appAttestKeyId, OR: [{ appAttestCounter: null }, { appAttestCounter: { lt: BigInt(verdict.counter) } }] },
      data: { appAttestCounter: BigInt(verdict.counter), lastSeenAt: now, attestationExpiresAt },
    });
    if (updated.count === 0) return this.rejectAssertion(caller, 'counter_not_increasing', facts);

    // The expiry is an input of the trust record the authenticator reads, so it is rewritten.
    const trust = extendsAttestation ? await this.deps.deviceTrust.sync(caller.deviceId) : (await this.currentTrust(caller.deviceId)).trust;
    this.deps.logger.debug({ event: 'device.asserted', userId: caller.userId, deviceId: caller.deviceId, counter: verdict.counter }, 'device.asserted');
    return { status: 'PASSED', reason: null, integritySignals: device.integritySignals as IntegritySignal[], trust, expiresAt: attestationExpiresAt };
  }

  private async currentTrust(deviceId: string): Promise<{ trust: DeviceTrust; integritySignals: IntegritySignal[] }> {
    const device = await this.deps.db.device.findUniqueOrThrow({ where: { id: deviceId }, select: deviceTrustSelect });
    return { trust: this.deps.deviceTrust.policy.trustOf(device, this.deps.clock.now()), integritySignals: device.integritySignals as IntegritySignal[] };
  }

  private async rejectChallenge(caller: AttestationCaller, kind: AttestationKind, reason: AttestationFailureReason, facts: RequestFacts): Promise<AttestationOutcome> {
    await this.deps.audit.record({ type: 'device.attestation_failed', userId: caller.userId, deviceId: caller.deviceId, ip: facts.ip, reason, data: { kind } });
    const current = await this.currentTrust(caller.deviceId);
    return { status: 'FAILED', reason, integritySignals: current.integritySignals, trust: current.trust, expiresAt: null };
  }

  private async rejectAssertion(caller: AttestationCaller, reason: AttestationFailureReason, facts: RequestFacts): Promise<AttestationOutcome> {
    await this.deps.audit.record({ type: 'device.assertion_failed', userId: caller.userId, deviceId: caller.deviceId, ip: facts.ip, reason, data: { kind: 'APP_ATTEST' } });
    const current = await this.currentTrust(caller.deviceId);
    return { status: 'FAILED', reason, integritySignals: current.integritySignals, trust: current.trust, expiresAt: null };
  }
}
