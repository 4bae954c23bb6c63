import type { AuditLog } from '../audit/index.ts';
import type { DeviceTrust } from '../authz/principal.ts';
import { epochSeconds, type Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db, Prisma } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';
import {
  attestationFailed,
  attestationPassed,
  decodeTrustRecord,
  deviceTrustSelect,
  encodeTrustRecord,
  hasTrustLoweringSignal,
  liveTrustOf,
  trustFactsOf,
  trustRecordKey,
  type DeviceTrustRow,
  type LiveTrust,
  type TrustPolicy,
} from './trust.ts';

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

/**
 * A platform attestation verdict, as the Play Integrity and App Attest verifiers return it. A failed
 * verdict ends the device's previous attestation.
 */
export type AttestationResult =
  | {
      passed: true;
      kind: string;
      signals: readonly string[];
      /** When the attestation stops counting. */
      expiresAt: Date;
      /** App Attest: the key the device proved it holds, kept for later assertions. */
      appAttestKey?: { keyId: string; publicKey: Buffer; counter: number };
    }
  | { passed: false; kind: string; reason: string; signals: readonly string[] };

/** The actor of a trust change, for the audit trail. */
export interface TrustChangeActor {
  /** `user:<id>`, `operator:<id>` or `system`; omitted when the device's own session acted. */
  actor?: string | undefined;
  ip?: string | undefined;
}

export interface DeviceTrustServiceDeps {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  policy: TrustPolicy;
}

/** Background trust-record repairs in flight at once; more are dropped until some finish. */
const maxPendingRepairs = 1000;

/**
 * Changes device trust and keeps each device's trust record in Redis current.
 *
 * PostgreSQL stores the device row. Redis stores the inputs of the trust computation under
 * `dt:<deviceId>`, which the authenticator reads in the same MGET as the revocation record, so
 * authorization sees the live level without a PostgreSQL query. Every change locks the device row,
 * writes Redis before the transaction commits, and audits the change: concurrent changes of one
 * device therefore reach Redis in commit order, and a failed Redis write rolls the change back.
 */
export class DeviceTrustService {
  private readonly pendingRepairs = new Set<string>();

  constructor(private readonly deps: DeviceTrustServiceDeps) {}

  get policy(): TrustPolicy {
    return this.deps.policy;
  }

  /**
   * Records a verifier's verdict for `deviceId` and returns the device's new trust. Call it once per
   * verdict, outside any transaction of the caller's.
   */
  async recordAttestation(deviceId: string, verdict: AttestationResult, actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    const now = this.deps.clock.now();
    const lowering = hasTrustLoweringSignal(verdict.signals);
    const attestation = verdict.passed
      ? { attestationStatus: attestationPassed, attestedAt: now, attestationExpiresAt: verdict.expiresAt }
      : { attestationStatus: attestationFailed, attestationExpiresAt: null };
    const appAttestKey = verdict.passed && verdict.appAttestKey
      ? { appAttestKeyId: verdict.appAttestKey.keyId, appAttestPublicKey: new Uint8Array(verdict.appAttestKey.publicKey), appAttestCounter: BigInt(verdict.appAttestKey.counter) }
      : {};

    return this.change(deviceId, actor, {
      type: verdict.passed ? 'device.attested' : 'device.attestation_failed',
      reason: verdict.passed ? null : verdict.reason,
      data: { kind: verdict.kind, signals: [...verdict.signals] },
      update: {
        attestationKind: verdict.kind,
        ...attestation,
        ...appAttestKey,
        integritySignals: [...verdict.signals],
        // A trust-lowering signal voids the user's confirmation: the device must be confirmed again.
        ...(lowering ? { trustedAt: null } : {}),
      },
    });
  }

  /** Adds integrity signals reported outside an attestation (for example by risk checks). */
  async recordIntegritySignals(deviceId: string, signals: readonly string[], actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    return this.change(deviceId, actor, {
      type: 'device.integrity_signals',
      data: { signals: [...signals] },
      update: (row) => ({
        integritySignals: [...new Set([...row.integritySignals, ...signals])],
        ...(hasTrustLoweringSignal(signals) ? { trustedAt: null } : {}),
      }),
    });
  }

  /** Suspends token issuance to the device; its requests drop to UNKNOWN trust at once. */
  async suspend(deviceId: string, reason: string, actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    return this.change(deviceId, actor, { type: 'device.suspended', reason, update: { suspendedAt: this.deps.clock.now(), suspendReason: reason } });
  }

  /** Lifts a suspension. */
  async restore(deviceId: string, actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    return this.change(deviceId, actor, { type: 'device.restored', update: { suspendedAt: null, suspendReason: null } });
  }

  /** Records the user's second-factor confirmation of the device (`trustDevice`). */
  async confirm(deviceId: string, actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    return this.change(deviceId, actor, { type: 'device.trust_confirmed', update: { trustedAt: this.deps.clock.now() } });
  }

  /** Marks the device removed by its user; sessions are revoked by the caller. */
  async markRemoved(deviceId: string, actor: TrustChangeActor = {}): Promise<DeviceTrust> {
    return this.change(deviceId, actor, { type: 'device.removed', update: { removedAt: this.deps.clock.now() } });
  }

  /**
   * Rewrites the device's trust column and trust record from its row, after a change made elsewhere
   * (key binding at sign-in). Returns the device's trust.
   */
  async sync(deviceId: string): Promise<DeviceTrust> {
    return this.deps.db.$transaction((tx) => this.lockAndPublish(tx, deviceId).then((result) => result.trust), { maxWait: 10_000, timeout: 15_000 });
  }

  /**
   * The live trust of a request whose access token is bound to `jkt`, from the value of the device's
   * trust record (`trustRecordKey`), read by the caller with the revocation check. Without a record
   * it returns BASIC, which the request's verified DPoP proof already establishes. That happens when
   * Redis was not read (`undefined`) or lost the record (`null`); a lost record is then rewritten from
   * PostgreSQL in the background.
   */
  liveTrust(deviceId: string, jkt: string, raw: string | null | undefined): LiveTrust {
    const facts = raw === undefined ? undefined : decodeTrustRecord(raw);
    if (!facts) {
      if (raw !== undefined) this.scheduleRepair(deviceId);
      return { trust: 'BASIC', attestedAt: undefined };
    }
    return liveTrustOf(facts, jkt, epochSeconds(this.deps.clock.now()), this.deps.policy.trustedAfterSeconds);
  }

  private scheduleRepair(deviceId: string): void {
    if (this.pendingRepairs.has(deviceId) || this.pendingRepairs.size >= maxPendingRepairs) return;
    this.pendingRepairs.add(deviceId);
    this.deps.logger.warn({ deviceId }, 'device trust record missing from Redis; rewriting it from PostgreSQL');
    this.sync(deviceId)
      .catch((error: unknown) => this.deps.logger.error({ err: error, deviceId }, 'device trust record repair failed'))
      .finally(() => this.pendingRepairs.delete(deviceId));
  }

  private async change(
    deviceId: string,
    actor: TrustChangeActor,
    change: {
      type: string;
      reason?: string | null;
      data?: Record<string, unknown>;
      update: Prisma.DeviceUpdateInput | ((row: DeviceTrustRow) => Prisma.DeviceUpdateInput);
    },
  ): Promise<DeviceTrust> {
    return this.deps.db.$transaction(
      async (tx) => {
        const current = await this.lockDevice(tx, deviceId);
        const previousTrust = this.deps.policy.trustOf(current.row, this.deps.clock.now());
        const data = typeof change.update === 'function' ? change.update(current.row) : change.update;
        await tx.device.update({ where: { id: deviceId }, data });
        const { trust } = await this.lockAndPublish(tx, deviceId);
        await this.deps.audit.record(
          {
            type: change.type,
            userId: current.userId,
            deviceId,
            ip: actor.ip,
            actor: actor.actor,
            reason: change.reason ?? null,
            data: { ...change.data, trust, previousTrust },
          },
          tx,
        );
        return trust;
      },
      { maxWait: 10_000, timeout: 15_000 },
    );
  }

  private async lockDevice(tx: Transaction, deviceId: string): Promise<{ userId: string; stored: DeviceTrust; row: DeviceTrustRow }> {
    await tx.$queryRaw`SELECT id FROM devices WHERE id = ${deviceId}::uuid FOR UPDATE`;
    const device = await tx.device.findUnique({ where: { id: deviceId }, select: { userId: true, trust: true, ...deviceTrustSelect } });
    if (!device) throw new TollgateError('BAD_USER_INPUT', `No device has the id ${deviceId}.`, { field: 'id' });
    return { userId: device.userId, stored: device.trust, row: device };
  }

  /**
   * Computes the device's trust from its row, stores it in the trust column and writes the trust
   * record, all under the row lock. Throws SERVICE_UNAVAILABLE when Redis cannot be written, which
   * rolls the caller's change back.
   */
  private async lockAndPublish(tx: Transaction, deviceId: string): Promise<{ trust: DeviceTrust }> {
    const { row, stored } = await this.lockDevice(tx, deviceId);
    const trust = this.deps.policy.trustOf(row, this.deps.clock.now());
    if (trust !== stored) await tx.device.update({ where: { id: deviceId }, data: { trust } });

    try {
      await this.deps.state.set(trustRecordKey(deviceId), encodeTrustRecord(trustFactsOf(row)), this.deps.policy.maxAbsoluteSeconds);
    } catch (error) {
      this.deps.logger.error({ err: error, deviceId }, 'device trust record could not be written to Redis');
      throw new TollgateError('SERVICE_UNAVAILABLE', 'The device trust change could not be recorded: retry the request.', { retryAfterSeconds: 1 });
    }
    return { trust };
  }
}
