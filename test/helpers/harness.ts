import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';

import pg from 'pg';

import { startTollgate, type Tollgate } from '../../src/app.ts';
import type { TierSet } from '../../src/authz/tiers.ts';
import { ManualClock, type Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { StateStore } from '../../src/store/state.ts';
import { testDatabaseUrl, testRedisUrl } from './env.ts';

/** Collects every log line a gateway writes, so tests can assert what reached the log. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: string, callback: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
    callback();
  }

  text(): string {
    return this.lines.join('\n');
  }

  events(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface TestGateway {
  tollgate: Tollgate;
  config: Config;
  clock: Clock;
  logs: LogCapture;
  schema: string;
  redisPrefix: string;
  /** Sends a GraphQL request through the HTTP server, as an app would. */
  graphql(query: string, options?: { variables?: Record<string, unknown>; token?: string; headers?: Record<string, string> }): Promise<GraphQLResponse>;
  close(): Promise<void>;
}

export interface GraphQLResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: { data?: Record<string, unknown> | null; errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }> };
}

export interface TestGatewayOptions {
  env?: Record<string, string>;
  clock?: Clock;
  /** Reuse the schema and Redis prefix of another gateway: a second instance of one deployment. */
  shareWith?: TestGateway;
  state?: StateStore;
  tiers?: TierSet;
}

export const testMasterKey = randomBytes(32).toString('base64');

/** Rate limits and risk thresholds no ordinary test reaches. */
export const relaxedRiskEnv: Record<string, string> = {
  TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT: '10000/900',
  TOLLGATE_RATE_LIMIT_LOGIN_IP: '10000/900',
  TOLLGATE_RATE_LIMIT_SIGNUP_IP: '10000/3600',
  TOLLGATE_RATE_LIMIT_REFRESH_DEVICE: '10000/300',
  TOLLGATE_RISK_FAILED_LOGIN_IP_THRESHOLD: '10000',
  TOLLGATE_RISK_FAILED_LOGIN_PREFIX_THRESHOLD: '10000',
  TOLLGATE_RISK_FANOUT_IP_THRESHOLD: '10000',
  TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD: '10000',
  TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: '10000',
  TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD: '10000',
};

/** Starts a gateway on the real PostgreSQL and Redis, in a fresh schema and Redis key prefix. */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const schema = options.shareWith?.schema ?? `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const redisPrefix = options.shareWith?.redisPrefix ?? `tgtest:${schema}:`;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: testDatabaseUrl,
    REDIS_URL: testRedisUrl,
    TOLLGATE_MASTER_KEY: testMasterKey,
    TOLLGATE_REDIS_PREFIX: redisPrefix,
    TOLLGATE_ARGON2_MEMORY_KIB: '1024',
    TOLLGATE_ARGON2_ITERATIONS: '1',
    LOG_LEVEL: 'debug',
    // Every test request comes from 127.0.0.1: limits and risk thresholds sized for real clients
    // would stop suites that sign in many users. The risk tests set their own.
    ...relaxedRiskEnv,
    ...options.env,
  });
  const logs = new LogCapture();
  const logger = createLogger(config.logLevel, logs);
  const clock = options.clock ?? options.shareWith?.clock ?? new ManualClock();

  if (!options.shareWith) await createSchema(schema);
  const tollgate = await startTollgate({ config, logger, clock, databaseSchema: schema, state: options.state, tiers: options.tiers });

  return {
    tollgate,
    config,
    clock,
    logs,
    schema,
    redisPrefix,
    async graphql(query, requestOptions = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...requestOptions.headers };
      if (requestOptions.token) headers.authorization = `Bearer ${requestOptions.token}`;
      const response = await tollgate.gateway.app.inject({ method: 'POST', url: '/graphql', headers, payload: JSON.stringify({ query, variables: requestOptions.variables }) });
      return { status: response.statusCode, headers: response.headers, body: response.json() };
    },
    async close() {
      await tollgate.close();
      if (!options.shareWith) await dropSchema(schema);
    },
  };
}

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testDatabaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export function createSchema(schema: string): Promise<void> {
  return withClient(async (client) => {
    await client.query(`CREATE SCHEMA "${schema}"`);
  });
}

export function dropSchema(schema: string): Promise<void> {
  return withClient(async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
}

/** Runs SQL in the gateway's schema, for tests that inspect or tamper with rows directly. */
export function sql<T extends pg.QueryResultRow = Record<string, unknown>>(gateway: TestGateway, text: string, values: unknown[] = []): Promise<T[]> {
  return withClient(async (client) => {
    await client.query(`SET search_path TO "${gateway.schema}"`);
    return (await client.query<T>(text, values)).rows;
  });
}
