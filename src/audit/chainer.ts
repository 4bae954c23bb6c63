import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import { canonicalJson, chainHash, genesisHash, type EventFacts } from './canonical.ts';

/** First key of the two-key advisory lock that serialises chaining; the second is the table's oid. */
const auditLockClass = 0x61756474;
const pendingVersion = 'tollgate.audit.pending.v1';

/** Derives the key of pending-row MACs from the master key, so a database writer cannot forge them. */
export function auditMacKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'tollgate audit pending mac', 32));
}

/** HMAC-SHA256 over an event's facts: what an unchained row carries in `hash` until it is linked. */
export function pendingMac(key: Buffer, fields: EventFacts): Buffer {
  const encoding = canonicalJson([pendingVersion, fields.at.toISOString(), fields.type, fields.actor, fields.userId, fields.sessionId, fields.deviceId, fields.ip, fields.reason, fields.data ?? null]);
  return createHmac('sha256', key).update(encoding, 'utf8').digest();
}

export interface AuditChainerOptions {
  db: Db;
  logger: Logger;
  macKey: Buffer;
  /** How often each instance checks whether it recorded events since its last run. */
  intervalMs?: number;
  /** How often each instance looks for unchained rows anyway, e.g. rows of an instance that stopped. */
  sweepMs?: number;
  /** Rows linked per transaction. */
  batchSize?: number;
}

/**
 * Links unchained audit rows into the hash chain. `record` inserts rows without `seq` inside the
 * caller's transaction, so appends never wait on one another. The chainer then gives each row its
 * `seq`, `prevHash` and `hash` in id order, under one advisory lock across every instance. A row is
 * linked only when its MAC, keyed from the master key, matches its facts: a row written straight
 * into the table stays outside the chain, where `verifyAuditChain` reports it.
 */
export class AuditChainer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly rejected = new Set<bigint>();
  // Set by `notify` when this instance recorded an event, so an idle gateway sends no SQL.
  private dirty = true;
  private lastRunAt = 0;

  constructor(private readonly options: AuditChainerOptions) {}

  /** Marks that an event was recorded, so the next tick links it. */
  notify(): void {
    this.dirty = true;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? 200);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private tick(): void {
    if (this.running) return;
    const now = Date.now();
    if (!this.dirty && now - this.lastRunAt < (this.options.sweepMs ?? 5000)) return;
    this.dirty = false;
    this.lastRunAt = now;
    this.running = this.linkUntilShort(false)
      .catch((error: unknown) => {
        this.dirty = true;
        this.options.logger.error({ err: error }, 'audit chaining failed; retrying on the next tick');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Links every row committed so far, waiting for another instance's chaining to finish first. */
  chainAll(): Promise<number> {
    return this.linkUntilShort(true);
  }

  /**
   * Links batches until one comes back less than full, so a backlog drains at the speed of the
   * database rather than one batch per tick. Without `wait`, it also stops when the chainer stops.
   */
  private async linkUntilShort(wait: boolean): Promise<number> {
    const batchSize = this.options.batchSize ?? 500;
    let total = 0;
    for (;;) {
      const linked = await this.linkBatch(wait);
      total += linked;
      if (linked < batchSize || (!wait && !this.timer)) return total;
      // Requests waiting on this event loop get a turn between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private linkBatch(wait: boolean): Promise<number> {
    const batchSize = this.options.batchSize ?? 500;
    return this.options.db.$transaction(
      async (tx) => {
        if (wait) {
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(${auditLockClass}::int, 'audit_events'::regclass::oid::int)`;
        } else {
          const [lock] = await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(${auditLockClass}::int, 'audit_events'::regclass::oid::int) AS locked`;
          if (!lock?.locked) return 0;
        }

        const last = await tx.auditEvent.findFirst({ where: { seq: { not: null } }, orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
        const pending = await tx.auditEvent.findMany({
          where: { seq: null, ...(this.rejected.size > 0 ? { id: { notIn: [...this.rejected] } } : {}) },
          orderBy: { id: 'asc' },
          take: batchSize,
        });

        let seq = last?.seq ?? 0n;
        let prevHash = last?.hash ? Buffer.from(last.hash) : genesisHash;
        const links: { ids: string[]; seqs: string[]; prevHashes: Buffer[]; hashes: Buffer[] } = { ids: [], seqs: [], prevHashes: [], hashes: [] };
        for (const [index, row] of pending.entries()) {
          // Hashing a full batch takes milliseconds: requests on this event loop get turns in between.
          if (index > 0 && index % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
          const expected = pendingMac(this.options.macKey, row);
          if (!row.hash || row.hash.length !== expected.length || !timingSafeEqual(Buffer.from(row.hash), expected)) {
            this.reject(row.id);
            continue;
          }
          seq += 1n;
          const hash = chainHash({ ...row, seq, prevHash });
          links.ids.push(row.id.toString());
          links.seqs.push(seq.toString());
          links.prevHashes.push(prevHash);
          links.hashes.push(hash);
          prevHash = hash;
        }
        if (links.ids.length === 0) return 0;

        // One statement for the batch: a busy gateway records thousands of events per second.
        await tx.$executeRaw`
          UPDATE audit_events AS event
             SET seq = link.seq, prev_hash = link.prev_hash, hash = link.hash
            FROM unnest(${links.ids}::bigint[], ${links.seqs}::bigint[], ${links.prevHashes}::bytea[], ${links.hashes}::bytea[]) AS link(id, seq, prev_hash, hash)
           WHERE event.id = link.id`;
        return links.ids.length;
      },
      { maxWait: 10_000, timeout: 60_000 },
    );
  }

  private reject(id: bigint): void {
    if (this.rejected.has(id)) return;
    // Bounded: a flood of forged rows must not grow this set without end.
    if (this.rejected.size >= 10_000) this.rejected.clear();
    this.rejected.add(id);
    this.options.logger.error({ auditEventId: id.toString() }, 'audit row has no valid MAC: it was not written by Tollgate and stays outside the chain');
  }
}
