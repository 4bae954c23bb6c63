import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { createGateway, type Gateway } from './server.ts';
import { createServices, stopServices, type Services } from './services.ts';
import { openDatabase } from './store/db.ts';
import { openStateStore, type StateStore } from './store/state.ts';
import type { TierSet } from './authz/tiers.ts';

export interface Tollgate {
  gateway: Gateway;
  services: Services;
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** PostgreSQL schema for this instance's tables; tests give each file its own. */
  databaseSchema?: string;
  /** Apply pending migrations before serving. */
  migrate?: boolean;
  state?: StateStore;
  /** Tier policies; `config.tiers` when omitted. */
  tiers?: TierSet;
}

/**
 * Reads the master key, generating one under the data directory in embedded mode only: a
 * deployment with a real database must bring its own, or a lost data folder would lose every key.
 */
export async function resolveMasterKey(config: Config, logger: Logger): Promise<Buffer> {
  if (config.masterKey) return config.masterKey;
  if (config.databaseUrl) throw new Error('TOLLGATE_MASTER_KEY is required when DATABASE_URL is set');

  const file = path.resolve(config.dataDir, 'master.key');
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing) return Buffer.from(existing.trim(), 'base64');

  await mkdir(path.dirname(file), { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600 });
  logger.warn({ file }, 'embedded mode: generated a master key; keep this file private, and set TOLLGATE_MASTER_KEY outside development');
  return key;
}

/** Opens the stores, starts the services and builds the HTTP server, without listening. */
export async function startTollgate(options: StartOptions): Promise<Tollgate> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const masterKey = await resolveMasterKey(config, logger);

  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    schema: options.databaseSchema,
    migrate: options.migrate ?? true,
    poolSize: config.databasePoolSize,
    logger,
  });
  const state = options.state ?? openStateStore(config.redisUrl, config.redisPrefix, logger);

  try {
    const services = await createServices({ config: { ...config, masterKey }, clock, logger, database, state });
    const gateway = await createGateway({ services, tiers: options.tiers ?? config.tiers });
    return {
      gateway,
      services,
      async close() {
        // Apollo's drain plugin closes the Fastify server once in-flight requests finish.
        await gateway.apollo.stop();
        await stopServices(services);
        await state.close();
        await database.close();
      },
    };
  } catch (error) {
    await state.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
}
