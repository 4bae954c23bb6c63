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

/** An audit row as inserted: the event's normalised facts and the MAC the chainer checks. */
export interface AuditRow {
  type: string;
  userId: string | null;
  sessionId: string | null;
  deviceId: string | null;
  ip: string | null;
  reason: string | null;
  actor: string | null;
  data: ReturnType<typeof toStoredJson>;
  at: Date;
  hash: Buffer;
}

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
    const row = this.row(event);
    const { hash, ...facts } = row;

    await db.auditEvent.create({ data: { ...facts, data: (facts.data ?? undefined) as never, hash: new Uint8Array(hash) } });
    this.written([row]);
  }

  /**
   * Returns the row `record` would insert, for a caller that inserts it in its own SQL statement.
   * The caller calls `written` once the statement's transaction commits.
   */
  row(event: AuditEvent): AuditRow {
    const prepared = this.prepare(event);
    return { ...prepared, hash: pendingMac(this.macKey, prepared) };
  }

  /** Logs rows a caller inserted itself and wakes the chainer to link them. */
  written(rows: AuditRow[]): void {
    if (rows.length === 0) return;
    this.onRecorded();
    for (const row of rows) {
      this.logger.info({ event: row.type, userId: row.userId, sessionId: row.sessionId, deviceId: row.deviceId, actor: row.actor, reason: row.reason, ...row.data }, row.type);
    }
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
