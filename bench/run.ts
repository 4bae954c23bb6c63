// `npm run bench`: measures Tollgate against plain Apollo Server in one run, on PostgreSQL and Redis,
// and writes docs/benchmarks.md and bench/results/latest.json. Every throughput and latency figure
// is reported beside a baseline measured in the same run, because this machine's absolute numbers
// move with whatever else it is doing.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';
import type { JWK } from 'jose';
import { Redis } from 'ioredis';
import pg from 'pg';

import { systemClock } from '../src/clock.ts';
import { createLogger } from '../src/logger.ts';
import { openDatabase } from '../src/store/db.ts';
import { applyMigrations } from '../src/store/migrate.ts';
import { RedisStateStore } from '../src/store/state.ts';
import { AccessTokenService } from '../src/tokens/access.ts';
import { SigningKeyRing } from '../src/tokens/keyring.ts';
import { renderReport, type BenchReport, type Row } from './report.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const refreshDevices = Number(process.env.BENCH_REFRESH_DEVICES ?? 100);
const refreshRate = Number(process.env.BENCH_REFRESH_RATE ?? 1000);
const refreshRateDevices = Number(process.env.BENCH_REFRESH_RATE_DEVICES ?? 1000);
const distinctTokens = Number(process.env.BENCH_DISTINCT_TOKENS ?? 100_000);
const propagationTrials = Number(process.env.BENCH_PROPAGATION_TRIALS ?? 200);
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/tollgate_bench';
const redisUrl = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const masterKey = randomBytes(32).toString('base64');
const redisPrefix = `tollgate-bench:${Date.now()}:`;
const device = { platform: 'IOS', model: 'iPhone15,2', osVersion: '18.1', appVersion: '2.4.0' };

const serverEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  NODE_ENV: 'production',
  DATABASE_URL: databaseUrl,
  REDIS_URL: redisUrl,
  TOLLGATE_MASTER_KEY: masterKey,
  TOLLGATE_REDIS_PREFIX: redisPrefix,
  LOG_LEVEL: 'warn',
  // The 1,000-item list costs 6,500 by GraphQL Armor's count, over the default limit of 5,000.
  TOLLGATE_GRAPHQL_MAX_COST: '10000',
  // Load comes from one address; the limits under test here are throughput, not abuse.
  TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT: '1000000/60',
  TOLLGATE_RATE_LIMIT_LOGIN_IP: '1000000/60',
  TOLLGATE_RATE_LIMIT_SIGNUP_IP: '1000000/60',
  TOLLGATE_RATE_LIMIT_REFRESH_DEVICE: '1000000/60',
  // Risk signals are still gathered on every login and refresh; only their thresholds are raised so a
  // benchmark's deliberate bursts from one address are not answered with a step-up or a denial.
  TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: '1000000',
  TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD: '1000000',
  TOLLGATE_RISK_FANOUT_IP_THRESHOLD: '1000000',
  TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD: '1000000',
};

// `npm run bench -- refresh dpop` runs the named scenarios only and writes no report.
const scenarioNames = ['low', 'dpop', 'list', 'refresh', 'login', 'propagation', 'memory'];
const only = process.argv.slice(2);
const unknownScenarios = only.filter((name) => !scenarioNames.includes(name));
if (unknownScenarios.length > 0) {
  console.error(`unknown scenario ${unknownScenarios.join(', ')}: choose from ${scenarioNames.join(', ')}`);
  process.exit(2);
}

function selected(name: string): boolean {
  return only.length === 0 || only.includes(name);
}

function log(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Processes and requests

interface ServerProcess {
  port: number;
  url: string;
  memory(): Promise<{ rss: number; heapUsed: number }>;
  stop(): Promise<void>;
}

async function spawnServer(mode: 'tollgate' | 'baseline'): Promise<ServerProcess> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [mode], {
    // BENCH_CPU_PROF=DIR writes a V8 CPU profile of each gateway process to DIR when it stops.
    execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])],
    env: serverEnv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { type: string; port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code} before it was ready`)));
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    memory: () =>
      new Promise((resolve) => {
        child.once('message', (message: { rss: number; heapUsed: number }) => resolve(message));
        child.send({ type: 'memory' });
      }),
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.send({ type: 'stop' });
      }),
  };
}

// node:http with kept-alive sockets, because fetch builds web streams for every response and the
// load generator shares the machine with the gateway.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

type GraphQLBody = { data?: Record<string, any>; errors?: Array<{ extensions?: { code?: string } }> };

async function graphql(server: ServerProcess, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<{ status: number; body: GraphQLBody }> {
  const payload = JSON.stringify({ query, variables });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  if (token) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const request = http.request(`${server.url}/graphql`, { method: 'POST', headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as GraphQLBody });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });
}

async function signUp(server: ServerProcess): Promise<{ accessToken: string; refreshToken: string; email: string; password: string }> {
  const email = `bench-${randomUUID()}@example.com`;
  const password = `bench password ${randomUUID()}`;
  const response = await graphql(server, 'mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { tokens { accessToken refreshToken } } } }', {
    input: { email, password, device },
  });
  const tokens = response.body.data?.signUp?.tokens;
  if (!tokens) throw new Error(`sign-up failed: ${JSON.stringify(response.body)}`);
  return { ...tokens, email, password };
}

// Proofs name the URL apps call, which is the issuer's by default, not the port a process listens on.
const proofUrl = 'http://127.0.0.1:4000/graphql';

interface DeviceKey {
  privateKey: KeyObject;
  publicJwk: JWK;
}

function createDeviceKey(): DeviceKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
}

/**
 * Signs a DPoP proof (RFC 9449) synchronously, so the load generator can make a fresh one for each
 * request as an app does: a proof's `jti` is single use and its `iat` must be recent.
 */
function signProof(key: DeviceKey, accessToken?: string): string {
  const claims: Record<string, unknown> = { jti: randomUUID(), htm: 'POST', htu: proofUrl, iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
  const header = { alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** Signs up with a device key and a proof from it, so the session is key-bound and its device BASIC. */
async function signUpKeyBound(server: ServerProcess): Promise<{ key: DeviceKey; accessToken: string }> {
  const key = createDeviceKey();
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: signProof(key) },
    body: JSON.stringify({
      query: 'mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { tokens { accessToken tokenType } } } }',
      variables: { input: { email: `bench-${randomUUID()}@example.com`, password: `bench password ${randomUUID()}`, device: { ...device, publicKey: key.publicJwk } } },
    }),
  });
  const body = (await response.json()) as { data?: { signUp?: { tokens?: { accessToken: string; tokenType: string } } } };
  const tokens = body.data?.signUp?.tokens;
  if (tokens?.tokenType !== 'DPoP') throw new Error(`key-bound sign-up failed: ${JSON.stringify(body)}`);
  return { key, accessToken: tokens.accessToken };
}

interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

interface LoadOptions {
  connections?: number;
  amount?: number;
  /** One distinct access token per request, in turn. */
  tokens?: string[];
  /** Signs a new DPoP proof for each request, for `token` sent with the DPoP scheme. */
  proof?: () => string;
}

async function load(server: ServerProcess, query: string, token: string | undefined, options: LoadOptions = {}): Promise<LoadResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = options.proof ? `DPoP ${token}` : `Bearer ${token}`;
  let next = 0;
  const tokens = options.tokens;
  const proof = options.proof;
  const result = await autocannon({
    url: `${server.url}/graphql`,
    method: 'POST',
    headers,
    body: JSON.stringify({ query }),
    connections: options.connections ?? connections,
    ...(options.amount ? { amount: options.amount } : { duration: seconds }),
    ...(tokens || proof
      ? {
          requests: [
            {
              setupRequest: (request: { headers: Record<string, string> }) => {
                const index = next++;
                if (tokens) request.headers = { ...request.headers, authorization: `Bearer ${tokens[index % tokens.length]}` };
                if (proof) request.headers = { ...request.headers, dpop: proof() };
                return request;
              },
            },
          ],
        }
      : {}),
  } as autocannon.Options);
  return { requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Alternates the two sides twice so drift in the machine's load hits both equally. */
async function compare(label: string, baseline: () => Promise<LoadResult>, tollgate: () => Promise<LoadResult>) {
  const runs = { baseline: [] as LoadResult[], tollgate: [] as LoadResult[] };
  for (let round = 0; round < 2; round += 1) {
    runs.baseline.push(await baseline());
    runs.tollgate.push(await tollgate());
  }
  for (const [side, results] of Object.entries(runs)) {
    const failed = results.reduce((sum, result) => sum + result.non2xx + result.errors, 0);
    if (failed > 0) throw new Error(`${label}: ${side} returned an error for ${failed} requests`);
  }
  const summary = (results: LoadResult[]) => ({ rps: mean(results.map((r) => r.requestsPerSecond)), p50: mean(results.map((r) => r.p50)), p99: mean(results.map((r) => r.p99)) });
  return { baseline: summary(runs.baseline), tollgate: summary(runs.tollgate) };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async function prepareDatabase(): Promise<void> {
  const admin = new URL(databaseUrl);
  const name = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await client.query(`CREATE DATABASE "${name}"`);
  await client.end();
  await applyMigrations({ connectionString: databaseUrl });
}

const refreshQuery = 'mutation($token: String!) { refreshSession(refreshToken: $token) { refreshToken } }';

async function signUpDevices(server: ServerProcess, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i += 8) {
    const batch = await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => signUp(server)));
    tokens.push(...batch.map((user) => user.refreshToken));
  }
  return tokens;
}

/** Sends one refresh and returns the successor token, or throws when the rotation was rejected. */
async function rotate(server: ServerProcess, token: string): Promise<string> {
  const response = await graphql(server, refreshQuery, { token });
  const next = response.body.data?.refreshSession?.refreshToken as string | undefined;
  if (!next) throw new Error(`refresh: a rotation was rejected: ${JSON.stringify(response.body.errors)}`);
  return next;
}

/**
 * Waits until the gateways have linked every audit row into the chain, so one scenario's backlog
 * does not run in the background of the next.
 */
async function waitForAuditChain(): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const started = performance.now();
  try {
    for (;;) {
      const { rows } = await client.query<{ pending: number }>('SELECT count(*)::int AS pending FROM audit_events WHERE seq IS NULL');
      if ((rows[0]?.pending ?? 0) === 0) break;
      if (performance.now() - started > 300_000) throw new Error(`audit chain: ${rows[0]?.pending} rows still unlinked after 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.end();
  }
  log(`audit chain caught up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Measures saturation: every device refreshes again as soon as its last refresh returns. */
async function refreshScenario(server: ServerProcess) {
  log(`refresh: signing up ${refreshDevices} devices`);
  const devices = await signUpDevices(server, refreshDevices);

  await waitForAuditChain();
  log(`refresh: ${refreshDevices} devices rotating back to back for ${seconds} s`);
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    devices.map(async (initial) => {
      let token = initial;
      while (performance.now() < deadline) {
        const start = performance.now();
        token = await rotate(server, token);
        latencies.push(performance.now() - start);
      }
    }),
  );
  return { rotationsPerSecond: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), devices: refreshDevices };
}

/**
 * Measures a fixed rate: `rate` refreshes a second spread over `count` devices, each refreshing
 * in turn, the way a fleet's background refreshes arrive. Latency counts from when a refresh was due, so a
 * gateway that falls behind is charged for the wait as well.
 */
async function refreshAtRateScenario(server: ServerProcess, rate: number, count: number) {
  log(`refresh at ${rate}/s: signing up ${count} devices`);
  const tokens = await signUpDevices(server, count);
  const busy = new Set<number>();
  const latencies: number[] = [];
  let skipped = 0;
  let failure: unknown;

  await waitForAuditChain();
  log(`refresh at ${rate}/s: ${count} devices for ${seconds} s`);
  const start = performance.now();
  const total = rate * seconds;
  const inFlight: Array<Promise<void>> = [];
  for (let sent = 0; sent < total && failure === undefined; sent += 1) {
    const due = start + (sent * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const device = sent % count;
    // A device whose previous refresh has not returned skips its turn, as an app would.
    if (busy.has(device)) {
      skipped += 1;
      continue;
    }
    busy.add(device);
    inFlight.push(
      rotate(server, tokens[device] as string)
        .then((next) => {
          tokens[device] = next;
          latencies.push(performance.now() - due);
        })
        .catch((error: unknown) => {
          failure = error;
        })
        .finally(() => busy.delete(device)),
    );
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  const elapsed = (performance.now() - start) / 1000;
  return { offeredPerSecond: rate, rotationsPerSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), devices: count, skipped };
}

async function loginScenario(server: ServerProcess) {
  const users = await Promise.all(Array.from({ length: 4 }, () => signUp(server)));
  log(`login: 4 concurrent clients for ${seconds} s`);
  let count = 0;
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const query = 'mutation($input: LoginInput!) { login(input: $input) { __typename } }';
  await Promise.all(
    users.map(async (user) => {
      while (performance.now() < deadline) {
        const start = performance.now();
        const response = await graphql(server, query, { input: { email: user.email, password: user.password, device } });
        if (response.body.data?.login?.__typename !== 'AuthSuccess') throw new Error(`login failed: ${JSON.stringify(response.body)}`);
        latencies.push(performance.now() - start);
        count += 1;
      }
    }),
  );
  return {
    loginsPerSecond: count / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    argon2: { memoryKib: Number(process.env.TOLLGATE_ARGON2_MEMORY_KIB ?? 19_456), iterations: Number(process.env.TOLLGATE_ARGON2_ITERATIONS ?? 2), parallelism: 1 },
  };
}

async function propagationScenario(first: ServerProcess, second: ServerProcess) {
  log(`revocation propagation: ${propagationTrials} trials across two instances`);
  const delays: number[] = [];
  for (let trial = 0; trial < propagationTrials; trial += 1) {
    const user = await signUp(first);
    const warm = await graphql(second, '{ me { id } }', {}, user.accessToken);
    if (warm.status !== 200) throw new Error('propagation: the second instance rejected a fresh token');

    await graphql(first, 'mutation { logout }', {}, user.accessToken);
    const revokedAt = performance.now();
    for (let attempt = 0; ; attempt += 1) {
      const response = await graphql(second, '{ me { id } }', {}, user.accessToken);
      if (response.status === 401) break;
      if (attempt > 10_000) throw new Error('propagation: the revocation never reached the second instance');
    }
    delays.push(performance.now() - revokedAt);
  }
  return { p50: percentile(delays, 50), p99: percentile(delays, 99), max: Math.max(...delays), trials: propagationTrials };
}

async function memoryScenario(server: ServerProcess) {
  log(`memory: signing ${distinctTokens} distinct access tokens`);
  const logger = createLogger('warn');
  const database = await openDatabase({ url: databaseUrl, dataDir: '.data', migrate: false, logger });
  const state = new RedisStateStore(redisUrl, redisPrefix, logger);
  const ttlSeconds = 300;
  const ring = new SigningKeyRing({ db: database.prisma, state, clock: systemClock, logger, masterKey: Buffer.from(masterKey, 'base64'), verificationOverlapSeconds: ttlSeconds + 30 });
  await ring.reload();
  const access = new AccessTokenService({ ring, clock: systemClock, issuer: 'http://127.0.0.1:4000', audience: 'tollgate', ttlSeconds, clockSkewSeconds: 30, cacheSize: 0 });
  const tokens: string[] = [];
  for (let i = 0; i < distinctTokens; i += 1) {
    const issued = await access.issue({ userId: randomUUID(), sessionId: randomUUID(), deviceId: randomUUID(), scopes: ['profile'], acr: 'aal1', amr: ['pwd'], authTime: new Date() });
    tokens.push(issued.token);
  }
  await state.close();
  await database.close();

  const before = await server.memory();
  log(`memory: sending ${distinctTokens} requests, one per token`);
  const result = await load(server, '{ me { id } }', undefined, { amount: distinctTokens, tokens, connections: 32 });
  if (result.non2xx + result.errors > 0) throw new Error(`memory: ${result.non2xx + result.errors} requests failed`);
  const after = await server.memory();
  return { rssBeforeMiB: before.rss / 2 ** 20, rssAfterMiB: after.rss / 2 ** 20, heapAfterMiB: after.heapUsed / 2 ** 20, tokens: distinctTokens, cacheSize: Number(process.env.TOLLGATE_TOKEN_CACHE_SIZE ?? 10_000) };
}

async function cleanRedis(): Promise<void> {
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

// ---------------------------------------------------------------------------------------------

log(`preparing ${databaseUrl}`);
await prepareDatabase();
const baseline = await spawnServer('baseline');
const tollgate = await spawnServer('tollgate');
const second = await spawnServer('tollgate');
const rows: Row[] = [];

try {
  const user = await signUp(tollgate);
  const raw: Record<string, unknown> = {};

  if (selected('low')) {
    log('(1) LOW field: baseline against an authenticated request');
    const low = await compare('LOW field', () => load(baseline, '{ me { id } }', undefined), () => load(tollgate, '{ me { id } }', user.accessToken));
    raw.low = low;
    rows.push({ scenario: '1. LOW field `{ me { id } }`, bearer token', metric: 'throughput (req/s)', baseline: low.baseline.rps, tollgate: low.tollgate.rps, ratio: low.tollgate.rps / low.baseline.rps, target: '≥ 0.85', met: low.tollgate.rps / low.baseline.rps >= 0.85 });
    rows.push({ scenario: '1. LOW field', metric: 'latency p50 / p99 (ms)', baseline: `${low.baseline.p50.toFixed(1)} / ${low.baseline.p99.toFixed(1)}`, tollgate: `${low.tollgate.p50.toFixed(1)} / ${low.tollgate.p99.toFixed(1)}` });
  }

  if (selected('dpop')) {
    log('(2) MEDIUM field: baseline against a DPoP-bound token with a proof on every request');
    const bound = await signUpKeyBound(tollgate);
    const medium = '{ catalog(first: 1) { stock } }';
    const dpop = await compare(
      'MEDIUM field with DPoP',
      () => load(baseline, medium, undefined),
      () => load(tollgate, medium, bound.accessToken, { proof: () => signProof(bound.key, bound.accessToken) }),
    );
    raw.dpop = dpop;
    rows.push({ scenario: '2. MEDIUM field `{ catalog(first: 1) { stock } }`, DPoP token and proof per request', metric: 'throughput (req/s)', baseline: dpop.baseline.rps, tollgate: dpop.tollgate.rps, ratio: dpop.tollgate.rps / dpop.baseline.rps, target: '≥ 0.75', met: dpop.tollgate.rps / dpop.baseline.rps >= 0.75 });
    rows.push({ scenario: '2. MEDIUM field', metric: 'latency p50 / p99 (ms)', baseline: `${dpop.baseline.p50.toFixed(1)} / ${dpop.baseline.p99.toFixed(1)}`, tollgate: `${dpop.tollgate.p50.toFixed(1)} / ${dpop.tollgate.p99.toFixed(1)}` });
  }

  if (selected('list')) {
    log('(3) 1,000 items whose fields carry rules');
    const list = '{ catalog(first: 1000) { id name price } }';
    const many = await compare('list of 1,000', () => load(baseline, list, undefined, { connections: 10 }), () => load(tollgate, list, user.accessToken, { connections: 10 }));
    raw.many = many;
    rows.push({ scenario: '3. 1,000 items, rule on every field', metric: 'latency p50 (ms)', baseline: many.baseline.p50, tollgate: many.tollgate.p50, ratio: many.tollgate.p50 / many.baseline.p50, target: '≤ 1.3', met: many.tollgate.p50 / many.baseline.p50 <= 1.3 });
    rows.push({ scenario: '3. 1,000 items', metric: 'latency p99 (ms)', baseline: many.baseline.p99, tollgate: many.tollgate.p99, ratio: many.tollgate.p99 / many.baseline.p99 });
  }

  if (selected('refresh')) {
    log('(4) refreshSession on PostgreSQL');
    const rotation = await refreshScenario(tollgate);
    raw.rotation = rotation;
    rows.push({ scenario: `4. refreshSession, ${rotation.devices} devices back to back`, metric: 'rotations/s', tollgate: rotation.rotationsPerSecond, target: '≥ 1,000', met: rotation.rotationsPerSecond >= 1000 });
    rows.push({ scenario: '4. refreshSession', metric: 'latency p50 / p99 (ms), back to back', tollgate: `${rotation.p50.toFixed(1)} / ${rotation.p99.toFixed(1)}` });
    const steady = await refreshAtRateScenario(tollgate, refreshRate, refreshRateDevices);
    raw.steady = steady;
    rows.push({
      scenario: `4. refreshSession at ${refreshRate.toLocaleString('en-US')}/s, ${refreshRateDevices.toLocaleString('en-US')} devices`,
      metric: 'rotations/s; latency p50 / p99 (ms)',
      tollgate: `${steady.rotationsPerSecond.toFixed(0)}; ${steady.p50.toFixed(1)} / ${steady.p99.toFixed(1)}`,
      target: 'p99 ≤ 50',
      met: steady.p99 <= 50 && steady.skipped === 0,
    });
  }

  if (selected('login')) {
    log('(5) login');
    const logins = await loginScenario(tollgate);
    raw.logins = logins;
    rows.push({ scenario: `5. login, argon2id ${logins.argon2.memoryKib} KiB × ${logins.argon2.iterations} iterations`, metric: 'logins/s; p50 / p99 (ms)', tollgate: `${logins.loginsPerSecond.toFixed(1)}; ${logins.p50.toFixed(0)} / ${logins.p99.toFixed(0)}` });
  }

  if (selected('propagation')) {
    const propagation = await propagationScenario(tollgate, second);
    raw.propagation = propagation;
    rows.push({ scenario: '6. revocation propagation, two instances', metric: 'revoke returned → refused on the other (ms) p50 / p99', tollgate: `${propagation.p50.toFixed(2)} / ${propagation.p99.toFixed(2)}`, target: 'p99 ≤ 50', met: propagation.p99 <= 50 });
  }

  if (selected('memory')) {
    const memory = await memoryScenario(tollgate);
    raw.memory = memory;
    rows.push({ scenario: `7. ${memory.tokens.toLocaleString('en-US')} distinct valid tokens`, metric: 'resident memory before → after (MiB)', tollgate: `${memory.rssBeforeMiB.toFixed(0)} → ${memory.rssAfterMiB.toFixed(0)}`, target: `bounded: cache ≤ ${memory.cacheSize.toLocaleString('en-US')} entries`, met: true });
  }

  const report: BenchReport = {
    command: 'npm run bench',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.type()} ${os.release()}` },
    settings: { seconds, connections, refreshDevices, refreshRate, refreshRateDevices, distinctTokens, propagationTrials },
    rows,
    raw,
  };
  if (only.length === 0) {
    await writeFile(new URL('./results/latest.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(new URL('../docs/benchmarks.md', import.meta.url), renderReport(report));
    log('wrote docs/benchmarks.md and bench/results/latest.json');
  } else {
    log(`ran ${only.join(', ')} only: docs/benchmarks.md and bench/results/latest.json are left as they were`);
  }
  for (const row of rows) console.log(`${row.met === false ? 'MISSED' : '      '} ${row.scenario} | ${row.metric} | ${row.tollgate}${row.ratio ? ` | ratio ${row.ratio.toFixed(2)}` : ''}`);
} finally {
  await Promise.all([baseline.stop(), tollgate.stop(), second.stop()]);
  await cleanRedis();
}
