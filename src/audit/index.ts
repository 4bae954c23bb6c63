import type { Clock } from '../clock.ts';
import type { Db } from '../store/db.ts';
import type { Logger } from '../logger.ts';

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
  | 'keys.rotated'
  | (string & {});

export interface AuditEvent {
  type: AuditEventType;
  userId?: string | null;
  sessionId?: string | null;
  deviceId?: string | null;
  ip?: string | null;
  reason?: string | null;
  /** Extra facts: ids, counts, reasons. Never a token, password, code or key. */
  data?: Record<string, unknown>;
}

type AuditWriter = Pick<Db, 'auditEvent'>;

/**
 * Appends security events to the `audit_events` table and mirrors each as one log line. Pass the
 * transaction client as `db` to make an event part of the change it records.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  async record(event: AuditEvent, db: AuditWriter = this.db): Promise<void> {
    await db.auditEvent.create({
      data: {
        at: this.clock.now(),
        type: event.type,
        userId: event.userId ?? null,
        sessionId: event.sessionId ?? null,
        deviceId: event.deviceId ?? null,
        ip: event.ip ?? null,
        reason: event.reason ?? null,
        data: (event.data ?? undefined) as never,
      },
    });
    this.logger.info({ event: event.type, userId: event.userId, sessionId: event.sessionId, deviceId: event.deviceId, reason: event.reason, ...event.data }, event.type);
  }
}
