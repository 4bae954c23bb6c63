import type { Clock } from '../clock.ts';
import type { Db } from '../store/db.ts';
import type { Logger } from '../logger.ts';
import { pendingMac } from './chainer.ts';
import { toStoredJson } from './canonical.ts';
import { looksLikeSecretValue, stripSecrets } from './secrets.ts';

export { AuditChainer, auditMacKey, pendingMac } from './chainer.ts';
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

/**
 * The append-only, hash-chained audit log (`audit_events`). `record` inserts an event, inside the
 * caller's transaction when one is passed, with a MAC over its facts and no chain position, so
 * appends from every request and instance run in parallel. `AuditChainer` links committed rows into
 * the chain (`seq`, the previous hash and a SHA-256 hash over the canonical encoding in
 * `canonical.ts`), so `verifyAuditChain` detects an edited, removed, inserted or reordered row.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly macKey: Buffer,
    /** Called after each insert, so the chainer runs on its next tick. */
    private readonly onRecorded: () => void = () => {},
  ) {}

  async record(event: AuditEvent, db: AuditWriter = this.db): Promise<void> {
    const prepared = this.prepare(event);

    await db.auditEvent.create({
      data: { ...prepared, data: (prepared.data ?? undefined) as never, hash: new Uint8Array(pendingMac(this.macKey, prepared)) },
    });
    this.onRecorded();

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

}
