import { createHash } from 'node:crypto';

/**
 * The canonical encoding of an audit event, hashed into the chain.
 *
 * An event's encoding is the JSON array, written without whitespace,
 *
 *   ["tollgate.audit.v1", seq, at, type, actor, userId, sessionId, deviceId, ip, reason, data, prevHash]
 *
 * where `seq` is the decimal string of the chain position (1 for the first event), `at` is the UTC
 * timestamp in ISO 8601 with milliseconds (`2026-12-04T20:05:07.123Z`), absent values are `null`,
 * `data` is canonical JSON (object keys sorted by UTF-16 code units at every depth, arrays in order,
 * numbers and strings as `JSON.stringify` writes them) and `prevHash` is the lowercase hex of the
 * previous event's hash, or 64 zeros for the first event. The event's hash is SHA-256 over the UTF-8
 * bytes of this array, so any change to a field, to the position or to the predecessor changes it.
 */

export const chainVersion = 'tollgate.audit.v1';

/** The `prevHash` of the first event in the chain. */
export const genesisHash: Buffer = Buffer.alloc(32);

/** The recorded facts of an event: what `record` writes and the hashes cover. */
export interface EventFacts {
  at: Date;
  type: string;
  actor: string | null;
  userId: string | null;
  sessionId: string | null;
  deviceId: string | null;
  ip: string | null;
  reason: string | null;
  data: unknown;
}

/** An event's facts with its chain position. */
export interface ChainedFields extends EventFacts {
  seq: bigint;
  prevHash: Uint8Array;
}

/** JSON with object keys sorted at every depth; `undefined` members are dropped as JSON does. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, member]) => member !== undefined)
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
    return `{${entries.map(([key, member]) => `${JSON.stringify(key)}:${canonicalJson(member)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Converts event data to the JSON value PostgreSQL's `jsonb` stores and returns, so the hash computed
 * at write time equals the one recomputed from the row: dates become ISO strings, bigints decimal
 * strings, and `undefined` members disappear.
 */
export function toStoredJson(data: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (data === undefined) return null;
  const text = JSON.stringify(data, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  return JSON.parse(text) as Record<string, unknown>;
}

export function canonicalEncoding(fields: ChainedFields): string {
  return canonicalJson([
    chainVersion,
    fields.seq.toString(),
    fields.at.toISOString(),
    fields.type,
    fields.actor,
    fields.userId,
    fields.sessionId,
    fields.deviceId,
    fields.ip,
    fields.reason,
    fields.data ?? null,
    Buffer.from(fields.prevHash).toString('hex'),
  ]);
}

export function chainHash(fields: ChainedFields): Buffer {
  return createHash('sha256').update(canonicalEncoding(fields), 'utf8').digest();
}
