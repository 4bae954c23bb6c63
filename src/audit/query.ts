import { z } from 'zod';

import { TollgateError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import type { EventFacts } from './canonical.ts';

export const auditFilterSchema = z.object({
  userId: z.uuid({ message: 'userId must be a user id' }).nullish(),
  sessionId: z.uuid({ message: 'sessionId must be a session id' }).nullish(),
  deviceId: z.uuid({ message: 'deviceId must be a device id' }).nullish(),
  types: z.array(z.string().min(1).max(100)).max(50).nullish(),
  from: z.date().nullish(),
  to: z.date().nullish(),
});

/** Audit search criteria; all given ones must match. `from` is inclusive, `to` exclusive. */
export type AuditFilter = z.infer<typeof auditFilterSchema>;

export interface AuditEventRow extends EventFacts {
  id: bigint;
  seq: bigint | null;
  prevHash: Uint8Array | null;
  hash: Uint8Array | null;
}

export interface AuditPage {
  events: AuditEventRow[];
  /** Pass as `after` for the next page; null on the last page. */
  endCursor: string | null;
  hasNextPage: boolean;
}

export const maxAuditPageSize = 200;

function whereOf(filter: AuditFilter) {
  return {
    ...(filter.userId ? { userId: filter.userId } : {}),
    ...(filter.sessionId ? { sessionId: filter.sessionId } : {}),
    ...(filter.deviceId ? { deviceId: filter.deviceId } : {}),
    ...(filter.types && filter.types.length > 0 ? { type: { in: filter.types } } : {}),
    ...(filter.from || filter.to ? { at: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } } : {}),
  };
}

/** Cursors are opaque to clients: the base64url of `seq:<n>`. */
function encodeCursor(seq: bigint): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): bigint {
  const match = /^seq:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new TollgateError('BAD_USER_INPUT', 'after: not a cursor returned by this query; pass endCursor from the previous page.', { field: 'after' });
  return BigInt(match[1] as string);
}

/** Returns matching events, newest first, one page at a time. */
export async function queryAuditEvents(db: Db, filter: AuditFilter, page: { first?: number | null; after?: string | null }): Promise<AuditPage> {
  const first = Math.min(Math.max(page.first ?? 50, 1), maxAuditPageSize);
  const before = page.after ? decodeCursor(page.after) : undefined;

  const rows = await db.auditEvent.findMany({
    where: { ...whereOf(filter), seq: before === undefined ? { not: null } : { lt: before } },
    orderBy: { seq: 'desc' },
    take: first + 1,
  });
  const events = rows.slice(0, first);
  const last = events.at(-1);
  const hasNextPage = rows.length > first;
  return { events, hasNextPage, endCursor: hasNextPage && last?.seq ? encodeCursor(last.seq) : null };
}

/** Serialises one event for export: bigints as decimal strings, hashes as hex, times in ISO 8601 UTC. */
export function exportedEvent(row: AuditEventRow): Record<string, unknown> {
  return {
    seq: row.seq?.toString() ?? null,
    at: row.at.toISOString(),
    type: row.type,
    actor: row.actor,
    userId: row.userId,
    sessionId: row.sessionId,
    deviceId: row.deviceId,
    ip: row.ip,
    reason: row.reason,
    data: row.data ?? null,
    prevHash: row.prevHash ? Buffer.from(row.prevHash).toString('hex') : null,
    hash: row.hash ? Buffer.from(row.hash).toString('hex') : null,
  };
}

/**
 * Yields matching events oldest first as JSON objects, reading 1,000 rows at a time, so an export of
 * the whole table never holds it in memory. With no filter the output can be re-verified offline.
 */
export async function* exportAuditEvents(db: Db, filter: AuditFilter): AsyncGenerator<Record<string, unknown>> {
  let after = 0n;
  for (;;) {
    const rows = await db.auditEvent.findMany({ where: { ...whereOf(filter), seq: { gt: after } }, orderBy: { seq: 'asc' }, take: 1000 });
    if (rows.length === 0) return;
    for (const row of rows) yield exportedEvent(row);
    after = rows.at(-1)?.seq as bigint;
  }
}
