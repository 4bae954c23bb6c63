import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';

import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { applyMigrations } from './migrate.ts';

export { Prisma, PrismaClient } from '../generated/prisma/client.ts';
export type Db = InstanceType<typeof PrismaClient>;

export interface Database {
  prisma: Db;
  /** The pool under `prisma`, for the few statements on hot paths that go straight to the driver. */
  pool: pg.Pool;
  /** The connection string the client uses; in embedded mode it points at the in-process server. */
  connectionString: string;
  schema: string | undefined;
  embedded: boolean;
  /** Number of SQL statements sent since start; tests use it to prove a path touches no database. */
  queryCount(): number;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL URL; when absent, an embedded PGlite database under `dataDir` is started. */
  url: string | undefined;
  dataDir: string;
  /** PostgreSQL schema to use instead of the connection's default (tests give each file its own). */
  schema?: string;
  /** Apply pending migrations before returning. */
  migrate: boolean;
  poolSize?: number;
  logger: Logger;
}

/** Adds `search_path` to a connection string, so raw SQL and migrations land in `schema`. */
export function withSearchPath(connectionString: string, schema: string | undefined): string {
  if (!schema) return connectionString;
  const url = new URL(connectionString);
  url.searchParams.set('options', `-c search_path="${schema}"`);
  return url.toString();
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const embedded = options.url === undefined;
  const server = embedded ? await startEmbeddedPostgres(options.dataDir, options.logger) : undefined;
  const baseUrl = server?.connectionString ?? (options.url as string);
  const connectionString = withSearchPath(baseUrl, options.schema);

  if (options.migrate) {
    const applied = await applyMigrations({ connectionString, schema: options.schema });
    options.logger.info({ applied, schema: options.schema ?? 'default' }, applied.length > 0 ? 'database migrations applied' : 'database schema is up to date');
  }

  // PGlite runs one query at a time and its socket server interleaves connections query by query,
  // so an embedded database gets one connection: two open transactions would otherwise mix.
  const pool = new pg.Pool({ connectionString, max: embedded ? 1 : (options.poolSize ?? 10) });
  let statements = 0;
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      statements += 1;
      return query(...args);
    };
  });
  pool.on('error', (error) => options.logger.error({ err: error }, 'idle PostgreSQL connection failed'));

  const adapter = new PrismaPg(pool, options.schema ? { schema: options.schema } : undefined);
  const prisma = new PrismaClient({ adapter });

  return {
    prisma,
    pool,
    connectionString,
    schema: options.schema,
    embedded,
    queryCount: () => statements,
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
      await server?.stop();
    },
  };
}

interface EmbeddedPostgres {
  connectionString: string;
  stop(): Promise<void>;
}

/** Starts PGlite (PostgreSQL in WebAssembly) on a loopback port, with its files under `dataDir`. */
async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedPostgres> {
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  const directory = path.resolve(dataDir, 'pglite');
  await mkdir(directory, { recursive: true });

  const db = await PGlite.create(directory);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  await server.start();
  const address = server.getServerConn();
  logger.warn({ dataDir: directory }, 'embedded mode: PGlite database in process; for one instance and development only, set DATABASE_URL for production');

  return {
    connectionString: `postgresql://postgres@${address}/postgres?sslmode=disable`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
