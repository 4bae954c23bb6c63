import type { Clock } from '../clock.ts';
import type { Db } from '../store/db.ts';
import type { Logger } from '../logger.ts';
import { chainHash, genesisHash, toStoredJson } from './canonical.ts';
import { looksLikeSecretValue, stripSecrets } from './secrets.ts';

export { canonicalEncoding, canonicalJson, chainHash, chainVersion, genesisHash } from './canonical.ts';
export { isSecretKey, looksLikeSecretValue, stripSecrets } from './secrets.ts';
export { verifyAuditChain, type ChainBreak, type ChainVerification } from './verify.ts';
export { auditFilterSchema, exportAuditEvents, exportedEvent, queryAuditEvents, type AuditEventRow, type AuditFilter, type AuditPage } from './query.ts';

/** Event types written to the audit table; one name per security-relevant fact. */
export type AuditEventType =
  | 'user.signed_up'
  | 'login.succeeded'
  | 'login.failed'
  | 'token.issued'
  | 'token.rotated'
  | 'refresh.failed'
  | 'refresh.grace_replayed'
  | 'refresh.reuse_detected'
  | 'session.revoked'
  | 'sessions.revoked_batch'
  | 'sessions.bulk_revocation_finished'
  | 'user.revoked'
  | 'user.suspended'
  | 'user.restored'
  | 'device.suspended'
  | 'device.restored'
  | 'operator.roles_changed'
  | 'keys.rotated'
  | 'keys.revoked'
  | (string & {});

export interface AuditEvent {
  type: AuditEventType;
  userId?: string | null;
  sessionId?: string | null;
  deviceId?: string | null;
  ip?: string | null;
  reason?: string | null;
  /** Who acted: `user:<id>`, `operator:<id>`, `cli:<os user>` or `system`; null for the subject itself. */
  actor?: string | null;
  /** Extra facts: ids, counts, reasons. Members that look like credentials are removed by `record`. */
  data?: Record<string, unknown>;
}

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

/** A Prisma client or an open transaction; events written through a transaction commit with it. */
export type AuditWriter = Transaction | Db;

/** First key of the two-key advisory lock that serialises appends; the second is the table's oid. */
const auditLockClass = 0x61756474;

/**
 * The append-only, hash-chained audit log (`audit_events`). Each event carries its position `seq`, the
 * hash of the event before it and its own SHA-256 hash over the canonical encoding in
 * `canonical.ts`, so `verifyAuditChain` detects an edited, removed, inserted or reordered row.
 *
 * Appends from every gateway instance take one PostgreSQL advisory transaction lock, so the chain
 * never forks. When `record` receives the caller's transaction, the lock is held until that
 * transaction ends: record events after the transaction's other writes, so the lock is held briefly
 * and always taken after any row locks, which rules out lock-order deadlocks.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  async record(event: AuditEvent, db: AuditWriter = this.db): Promise<void> {
    const prepared = this.prepare(event);

    if ('$transaction' in db) {
      // Appends queue on the chain lock; under load that wait can pass Prisma's 2 s default.
      await db.$transaction((tx) => this.append(tx, prepared), { maxWait: 10_000, timeout: 10_000 });
    } else {
      await this.append(db, prepared);
    }

    this.logger.info(
      { event: prepared.type, userId: prepared.userId, sessionId: prepared.sessionId, deviceId: prepared.deviceId, actor: prepared.actor, reason: prepared.reason, ...prepared.data },
      prepared.type,
    );
  }

  /** Normalises the event and removes anything that looks like a credential, logging what it removed. */
  private prepare(event: AuditEvent) {
    let data = event.data === undefined ? undefined : stripSecrets(event.data);
    let reason = event.reason ?? null;
    const removed = [...(data?.removed ?? [])];
    if (reason !== null && looksLikeSecretValue(reason)) {
      removed.push('reason');
      reason = '[removed: looked like a credential]';
    }
    if (removed.length > 0) {
      // A caller passed a credential: keep the event, drop the value, and say where it came from.
      this.logger.error({ event: event.type, removed }, 'audit event data contained credentials; they were removed before writing');
      data = { data: { ...(data?.data ?? {}), removedKeys: removed }, removed };
    }

    return {
      type: event.type,
      userId: event.userId ?? null,
      sessionId: event.sessionId ?? null,
      deviceId: event.deviceId ?? null,
      ip: event.ip ?? null,
      reason,
      actor: event.actor ?? null,
      data: toStoredJson(data?.data),
      at: this.clock.now(),
    };
  }

  private async append(tx: Transaction, event: ReturnType<AuditLog['prepare']>): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${auditLockClass}::int, 'audit_events'::regclass::oid::int)`;
    const last = await tx.auditEvent.findFirst({ where: { seq: { not: null } }, orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });

    const seq = (last?.seq ?? 0n) + 1n;
    const prevHash = last?.hash ? Buffer.from(last.hash) : genesisHash;
    const hash = chainHash({ ...event, seq, prevHash });

    await tx.auditEvent.create({
      data: {
        ...event,
        data: (event.data ?? undefined) as never,
        seq,
        prevHash: new Uint8Array(prevHash),
        hash: new Uint8Array(hash),
      },
    });
  }
}
