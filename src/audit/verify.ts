import type { Db } from '../store/db.ts';
import { chainHash, genesisHash } from './canonical.ts';

/** The first row where the chain does not hold, and why. */
export interface ChainBreak {
  /** The row's primary key. */
  id: bigint;
  /** The row's chain position as stored; null for a row outside the chain. */
  seq: bigint | null;
  reason: 'outside_chain' | 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch';
  message: string;
}

export interface ChainVerification {
  ok: boolean;
  /** Rows checked before the first break, or all of them. */
  checked: number;
  /** The last event of the chain: record `seq` and `hash` outside the database to detect a cut tail later. */
  head: { seq: bigint; hash: string } | null;
  firstBreak: ChainBreak | null;
}

const pageSize = 1000;

/**
 * Walks `audit_events` in `seq` order and recomputes every hash. Reports the first row that is
 * outside the chain (no `seq`), follows a gap in `seq` (a row was removed or renumbered), names a
 * predecessor hash other than the previous row's (a row was inserted, removed or moved) or whose
 * content no longer matches its hash (a row was edited). Removing the newest rows leaves a valid
 * shorter chain: compare `head` with a value recorded earlier to detect that.
 */
export async function verifyAuditChain(db: Db, onProgress?: (checked: number) => void): Promise<ChainVerification> {
  const unchained = await db.auditEvent.findFirst({ where: { seq: null }, orderBy: { id: 'asc' }, select: { id: true } });
  if (unchained) {
    return { ok: false, checked: 0, head: null, firstBreak: { id: unchained.id, seq: null, reason: 'outside_chain', message: `row id ${unchained.id} has no seq: it was written outside the chain` } };
  }

  let expectedSeq = 1n;
  let previousHash: Buffer = genesisHash;
  let checked = 0;
  let head: ChainVerification['head'] = null;

  for (;;) {
    const rows = await db.auditEvent.findMany({ where: { seq: { gte: expectedSeq } }, orderBy: { seq: 'asc' }, take: pageSize });
    if (rows.length === 0) break;

    for (const row of rows) {
      const failure = checkRow(row, expectedSeq, previousHash);
      if (failure) return { ok: false, checked, head, firstBreak: failure };
      previousHash = Buffer.from(row.hash as Uint8Array);
      head = { seq: row.seq as bigint, hash: previousHash.toString('hex') };
      expectedSeq += 1n;
      checked += 1;
    }
    onProgress?.(checked);
  }

  return { ok: true, checked, head, firstBreak: null };
}

type AuditRow = Awaited<ReturnType<Db['auditEvent']['findMany']>>[number];

function checkRow(row: AuditRow, expectedSeq: bigint, previousHash: Buffer): ChainBreak | undefined {
  const seq = row.seq as bigint;
  if (seq !== expectedSeq) {
    return { id: row.id, seq, reason: 'seq_gap', message: `row seq ${seq}: expected seq ${expectedSeq}, so the row at seq ${expectedSeq} was removed or renumbered` };
  }
  if (!row.prevHash || !Buffer.from(row.prevHash).equals(previousHash)) {
    return { id: row.id, seq, reason: 'prev_hash_mismatch', message: `row seq ${seq}: prevHash does not match the hash of row seq ${seq - 1n}, so a row was inserted, removed or moved before it` };
  }
  const recomputed = chainHash({
    seq,
    at: row.at,
    type: row.type,
    actor: row.actor,
    userId: row.userId,
    sessionId: row.sessionId,
    deviceId: row.deviceId,
    ip: row.ip,
    reason: row.reason,
    data: row.data,
    prevHash: row.prevHash,
  });
  if (!row.hash || !recomputed.equals(Buffer.from(row.hash))) {
    return { id: row.id, seq, reason: 'hash_mismatch', message: `row seq ${seq}: its content does not match its hash, so the row was edited` };
  }
  return undefined;
}
