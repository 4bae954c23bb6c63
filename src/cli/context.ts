import { userInfo } from 'node:os';

import { AuditChainer, AuditLog, auditMacKey } from '../audit/index.ts';
import { systemClock, type Clock } from '../clock.ts';
import { loadConfig, type Config } from '../config.ts';
import { createLogger, type Logger } from '../logger.ts';
import { BulkRevocation } from '../sessions/bulk.ts';
import { RevocationView } from '../sessions/revocation.ts';
import { RevocationService } from '../sessions/revoker.ts';
import { openDatabase, type Database } from '../store/db.ts';
import { openStateStore, type StateStore } from '../store/state.ts';
import { SigningKeyRing } from '../tokens/keyring.ts';

/** Input and output of one CLI run: results go to `stdout`, progress and errors to `stderr`. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  clock?: Clock;
  /** Stops long work between batches (SIGINT in the real command). */
  signal?: AbortSignal;
}

/** A usage or configuration problem: printed without a stack, exit status 2. */
export class CliUsageError extends Error {
  override name = 'CliUsageError';
}

export interface CliServices {
  config: Config;
  clock: Clock;
  logger: Logger;
  database: Database;
  state: StateStore | undefined;
  audit: AuditLog;
  auditChainer: AuditChainer;
  /** Present when REDIS_URL is set: changes that running gateways must learn of need it. */
  revocations: RevocationService | undefined;
  bulk: BulkRevocation | undefined;
  ring: SigningKeyRing;
  /** `cli:<name>`, recorded as the actor of every audit event the command writes. */
  actor: string;
  close(): Promise<void>;
}

/**
 * Splits a Prisma-style `schema` parameter off a PostgreSQL URL, so one URL selects the schema for
 * both Prisma and raw SQL, as it does for `prisma migrate`.
 */
export function splitSchema(url: string): { url: string; schema: string | undefined } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema };
}

/** Returns the operator's name for the audit trail: TOLLGATE_OPERATOR, else the OS user. */
function actorOf(env: Record<string, string | undefined>): string {
  const name = env.TOLLGATE_OPERATOR?.trim() || safeUserName();
  return `cli:${name}`;
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Opens PostgreSQL and Redis from the environment, as the gateway does, without migrating or serving. */
export async function openCliServices(io: CliIo): Promise<CliServices> {
  const config = loadConfig(io.env);
  if (!config.databaseUrl) throw new CliUsageError('DATABASE_URL is not set: the CLI works on the deployment\'s PostgreSQL database, not the embedded one.');
  if (!config.masterKey) throw new CliUsageError('TOLLGATE_MASTER_KEY is not set: it is required with DATABASE_URL.');

  const clock = io.clock ?? systemClock;
  const logger = createLogger(io.env.LOG_LEVEL ?? 'warn', { write: (line: string) => io.stderr.write(line) });
  const { url, schema } = splitSchema(config.databaseUrl);
  const database = await openDatabase({ url, schema, dataDir: config.dataDir, migrate: false, poolSize: 4, logger });
  const state = config.redisUrl ? openStateStore(config.redisUrl, config.redisPrefix, logger) : undefined;

  const db = database.prisma;
  const retentionSeconds = config.accessTokenTtlSeconds + config.clockSkewSeconds;
  const macKey = auditMacKey(config.masterKey);
  const auditChainer = new AuditChainer({ db, logger, macKey });
  const audit = new AuditLog(db, logger, clock, macKey, () => auditChainer.notify());
  const ring = new SigningKeyRing({ db, state: state ?? noBroadcast, clock, logger, masterKey: config.masterKey, verificationOverlapSeconds: retentionSeconds });
  const view = state ? new RevocationView({ db, state, clock, logger, retentionSeconds }) : undefined;

  return {
    config,
    clock,
    logger,
    database,
    state,
    audit,
    auditChainer,
    ring,
    revocations: view ? new RevocationService({ db, clock, logger, audit, revocation: view, ring }) : undefined,
    bulk: view ? new BulkRevocation({ db, clock, logger, audit, revocation: view, retentionSeconds }) : undefined,
    actor: actorOf(io.env),
    async close() {
      await state?.close();
      await database.close();
    },
  };
}

/** Stands in for Redis when REDIS_URL is unset: key changes then reach gateways on their periodic reload. */
const noBroadcast = {
  kind: 'memory',
  redis: undefined,
  publish: async () => undefined,
  subscribe: async () => undefined,
} as unknown as StateStore;
