import { randomUUID } from 'node:crypto';

import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { Prisma, type Db } from '../store/db.ts';
import { criteriaCondition, matchingAppVersions, revocationCriteriaSchema, type RevocationCriteria } from './criteria.ts';
import type { RevocationView } from './revocation.ts';

export type RevocationJobStatus = 'pending' | 'running' | 'paused' | 'finished';

export interface RevocationJobState {
  id: string;
  status: RevocationJobStatus;
  criteria: RevocationCriteria;
  reason: string;
  actor: string | null;
  /** Matching sessions when the job was created. */
  total: number;
  /** Sessions this job has revoked so far. */
  revoked: number;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface BulkProgress {
  jobId: string;
  revoked: number;
  total: number;
  batches: number;
}

export interface RunOptions {
  /** Stops the job between batches; it is left `paused` and can be resumed. */
  signal?: AbortSignal;
  onProgress?: (progress: BulkProgress) => void;
}

export interface BulkRevocationDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  revocation: RevocationView;
  retentionSeconds: number;
  /** Sessions per transaction; each batch holds row locks on at most this many sessions. */
  batchSize?: number;
}

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

/**
 * Revokes every active session matching criteria, in batches. A job row (`revocation_jobs`) stores
 * the criteria and a cursor: the highest session id handled. Each batch locks the job row, revokes
 * the next sessions after the cursor in id order, moves the cursor and writes one audit event, all in
 * one transaction. An interrupted job, whether stopped or crashed, resumes after the last committed
 * batch, and a session is never revoked or audited twice. Two runners of one job take turns on the
 * job row lock.
 */
export class BulkRevocation {
  private readonly batchSize: number;

  constructor(private readonly deps: BulkRevocationDeps) {
    this.batchSize = deps.batchSize ?? 500;
  }

  /** Parses untrusted criteria; throws `BAD_USER_INPUT` naming the first bad field. */
  parseCriteria(input: unknown): RevocationCriteria {
    const parsed = revocationCriteriaSchema.safeParse(input);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const field = ['criteria', ...(issue?.path ?? [])].join('.');
    throw new TollgateError('BAD_USER_INPUT', `${field}: ${issue?.message ?? 'invalid value'}`, { field });
  }

  /** Counts the active sessions the criteria match now: the dry run. */
  async count(criteria: RevocationCriteria): Promise<number> {
    const condition = await this.condition(criteria);
    const [row] = await this.deps.db.$queryRaw<Array<{ count: bigint }>>`SELECT count(*) AS count FROM sessions s JOIN devices d ON d.id = s.device_id WHERE ${condition}`;
    return Number(row?.count ?? 0);
  }

  /** Records a job for the criteria with its current count; `run` then does the work. */
  async create(criteria: RevocationCriteria, request: { reason: string; actor: string }): Promise<RevocationJobState> {
    const total = await this.count(criteria);
    const row = await this.deps.db.revocationJob.create({
      data: { id: randomUUID(), criteria: toJson(criteria), reason: request.reason, actor: request.actor, status: 'pending', total, createdAt: this.deps.clock.now() },
    });
    this.deps.logger.info({ jobId: row.id, total, actor: request.actor }, 'bulk revocation job created');
    return stateOf(row);
  }

  async get(jobId: string): Promise<RevocationJobState | undefined> {
    const row = await this.deps.db.revocationJob.findUnique({ where: { id: jobId } });
    return row ? stateOf(row) : undefined;
  }

  /** Runs or resumes a job until no matching session is left or `signal` stops it. */
  async run(jobId: string, options: RunOptions = {}): Promise<RevocationJobState> {
    const job = await this.get(jobId);
    if (!job) throw new TollgateError('BAD_USER_INPUT', `jobId: no revocation job ${jobId}.`, { field: 'jobId' });
    if (job.status === 'finished') return job;

    await this.deps.db.revocationJob.update({ where: { id: jobId }, data: { status: 'running' } });
    this.deps.logger.info({ jobId, revoked: job.revoked, total: job.total }, job.revoked > 0 ? 'bulk revocation resumed' : 'bulk revocation started');
    const condition = await this.condition(job.criteria);
    let batches = 0;

    for (;;) {
      if (options.signal?.aborted) {
        const paused = await this.deps.db.revocationJob.update({ where: { id: jobId }, data: { status: 'paused' } });
        this.deps.logger.warn({ jobId, revoked: paused.revoked, total: paused.total }, 'bulk revocation paused; resume it with the same job id');
        return stateOf(paused);
      }

      const batch = await this.deps.db.$transaction((tx) => this.revokeBatch(tx, jobId, condition, batches + 1), { maxWait: 10_000, timeout: 60_000 });
      if (batch.sessionIds.length === 0) break;
      batches += 1;
      await this.broadcast(jobId, batch.sessionIds);
      options.onProgress?.({ jobId, revoked: batch.revoked, total: job.total, batches });
    }

    return this.finish(jobId);
  }

  /** Revokes the next batch after the job's cursor and moves the cursor, in the caller's transaction. */
  private async revokeBatch(tx: Transaction, jobId: string, condition: Prisma.Sql, batchNumber: number): Promise<{ sessionIds: string[]; revoked: number }> {
    const [job] = await tx.$queryRaw<Array<{ cursor: string | null; revoked: number; reason: string; actor: string | null; status: string }>>`
      SELECT cursor::text AS cursor, revoked, reason, actor, status FROM revocation_jobs WHERE id = ${jobId}::uuid FOR UPDATE`;
    if (!job || job.status === 'finished') return { sessionIds: [], revoked: job?.revoked ?? 0 };

    const after = job.cursor === null ? Prisma.empty : Prisma.sql`AND s.id > ${job.cursor}::uuid`;
    const targets = await tx.$queryRaw<Array<{ id: string }>>`
      SELECT s.id::text AS id FROM sessions s JOIN devices d ON d.id = s.device_id
      WHERE ${condition} ${after}
      ORDER BY s.id LIMIT ${this.batchSize} FOR UPDATE OF s`;
    if (targets.length === 0) return { sessionIds: [], revoked: job.revoked };

    const ids = targets.map((target) => target.id);
    const now = this.deps.clock.now();
    const updated = await tx.session.updateMany({ where: { id: { in: ids }, revokedAt: null }, data: { revokedAt: now, revokeReason: job.reason } });
    await tx.refreshToken.updateMany({ where: { sessionId: { in: ids }, graceResult: { not: null } }, data: { graceResult: null } });
    const revoked = job.revoked + updated.count;
    await tx.revocationJob.update({ where: { id: jobId }, data: { cursor: ids.at(-1) as string, revoked } });
    await this.deps.audit.record(
      { type: 'sessions.revoked_batch', actor: job.actor, reason: job.reason, data: { jobId, batch: batchNumber, count: updated.count, sessionIds: ids } },
      tx,
    );
    return { sessionIds: ids, revoked };
  }

  private async finish(jobId: string): Promise<RevocationJobState> {
    const finished = await this.deps.db.$transaction(async (tx) => {
      // A second runner of the same job gets here too; only the first writes the summary.
      const changed = await tx.revocationJob.updateMany({ where: { id: jobId, status: { not: 'finished' } }, data: { status: 'finished', finishedAt: this.deps.clock.now() } });
      const row = await tx.revocationJob.findUniqueOrThrow({ where: { id: jobId } });
      if (changed.count === 0) return row;
      await this.deps.audit.record(
        { type: 'sessions.bulk_revocation_finished', actor: row.actor, reason: row.reason, data: { jobId, criteria: row.criteria, total: row.total, revoked: row.revoked } },
        tx,
      );
      return row;
    });
    this.deps.logger.info({ jobId, revoked: finished.revoked, total: finished.total }, 'bulk revocation finished');
    return stateOf(finished);
  }

  /**
   * Sends a committed batch to Redis and the other instances. On failure the job stops `paused`:
   * PostgreSQL stores the revocations, and every instance reloads its view from PostgreSQL when Redis
   * returns, so resuming after the outage loses nothing.
   */
  private async broadcast(jobId: string, sessionIds: string[]): Promise<void> {
    try {
      await this.deps.revocation.publish({ sessions: sessionIds });
    } catch (error) {
      await this.deps.db.revocationJob.update({ where: { id: jobId }, data: { status: 'paused' } });
      this.deps.logger.error({ err: error, jobId, sessions: sessionIds.length }, 'bulk revocation batch committed but not broadcast; job paused');
      throw new TollgateError('SERVICE_UNAVAILABLE', `Redis is unreachable: revocation job ${jobId} is paused; resume it once Redis is back.`, { retryAfterSeconds: 5, jobId });
    }
  }

  private async condition(criteria: RevocationCriteria): Promise<Prisma.Sql> {
    const appVersions = criteria.appVersion ? await matchingAppVersions(this.deps.db, criteria.appVersion) : undefined;
    return criteriaCondition(criteria, appVersions, this.deps.clock.now(), this.deps.retentionSeconds);
  }
}

/** Criteria as stored in the job row: dates as ISO strings, which `revocationCriteriaSchema` reads back. */
function toJson(criteria: RevocationCriteria): Prisma.InputJsonValue {
  return JSON.parse(JSON.stringify(criteria)) as Prisma.InputJsonValue;
}

function stateOf(row: { id: string; status: string; criteria: unknown; reason: string; actor: string | null; total: number; revoked: number; createdAt: Date; finishedAt: Date | null }): RevocationJobState {
  return {
    id: row.id,
    status: row.status as RevocationJobStatus,
    criteria: revocationCriteriaSchema.parse(row.criteria),
    reason: row.reason,
    actor: row.actor,
    total: row.total,
    revoked: row.revoked,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}
