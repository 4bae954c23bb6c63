import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';

import pg from 'pg';

import { startTollgate, type Tollgate } from '../src/app.ts';
import type { Clock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';

/**
 * Gateway settings for a simulated fleet. Tokens live `accessTokenTtlSeconds`, so a short run has
 * several refreshes per device. Rate limits and refresh-burst risk signals count on the wall clock
 * (Redis key expiry), while the fleet runs on virtual time at another pace. They are raised beyond
 * reach because they would otherwise measure the simulator's speed, not the fleet. Every device
 * sends its own address in X-Forwarded-For, which the gateway trusts from loopback.
 */
export function simulatorGatewayEnv(accessTokenTtlSeconds: number): Record<string, string> {
  return {
    TOLLGATE_ACCESS_TOKEN_TTL_SECONDS: String(accessTokenTtlSeconds),
    TOLLGATE_TRUSTED_PROXIES: '127.0.0.1,::1',
    TOLLGATE_RATE_LIMIT_REFRESH_DEVICE: '100000/300',
    TOLLGATE_RATE_LIMIT_SIGNUP_IP: '100000/3600',
    TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: '100000',
    TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD: '100000',
    TOLLGATE_ARGON2_MEMORY_KIB: '1024',
    TOLLGATE_ARGON2_ITERATIONS: '1',
  };
}

export interface InProcessGateway {
  url: string;
  tollgate: Tollgate;
  reuseDetections(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Starts a gateway in this process on `clock`, in a new PostgreSQL schema of `databaseUrl` and a new
 * Redis key prefix, listening on a free loopback port. `close` drops the schema and deletes the keys.
 */
export async function startInProcessGateway(options: { clock: Clock; databaseUrl: string; redisUrl: string; accessTokenTtlSeconds: number; logLevel?: string }): Promise<InProcessGateway> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const schema = `sim_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64'),
    TOLLGATE_REDIS_PREFIX: `tgsim:${schema}:`,
    TOLLGATE_ISSUER: origin,
    TOLLGATE_PUBLIC_URL: origin,
    LOG_LEVEL: options.logLevel ?? 'warn',
    ...simulatorGatewayEnv(options.accessTokenTtlSeconds),
  });
  const logger = createLogger(config.logLevel);

  await withClient(options.databaseUrl, (client) => client.query(`CREATE SCHEMA "${schema}"`));
  const tollgate = await startTollgate({ config, logger, clock: options.clock, databaseSchema: schema });
  await tollgate.gateway.app.listen({ host: '127.0.0.1', port });

  return {
    url: `${origin}/graphql`,
    tollgate,
    reuseDetections: () => tollgate.services.database.prisma.auditEvent.count({ where: { type: 'refresh.reuse_detected' } }),
    async close() {
      await deleteKeys(tollgate, config.redisPrefix);
      await tollgate.close();
      await withClient(options.databaseUrl, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    },
  };
}

/** Deletes every Redis key under `prefix`, in batches of a SCAN. */
async function deleteKeys(tollgate: Tollgate, prefix: string): Promise<void> {
  const redis = tollgate.services.state.redis;
  if (!redis) return;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
