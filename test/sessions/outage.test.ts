import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { errorCode, signUp, type SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { adminTestEnv, adminTestTiers, signUpOperator } from '../helpers/operators.ts';
import { TestRedisServer, waitFor } from '../helpers/redis-server.ts';

// Both instances use a private redis-server, so stopping, restarting and flushing it leaves the
// Redis that other test files share alone.
let redis: TestRedisServer;
let first: TestGateway;
let second: TestGateway;
let operator: SignedIn;

const me = '{ me { id } }';
const adminQuery = 'query($id: ID!) { adminUserSessions(userId: $id) { id } }';
const stalenessSeconds = 30;

function connected(gateway: TestGateway): boolean {
  return gateway.tollgate.services.state.isConnected?.() === true;
}

async function stopRedis(): Promise<void> {
  await redis.stop();
  await waitFor(() => !connected(first) && !connected(second));
}

async function restartRedis(): Promise<void> {
  await redis.restart();
  await waitFor(() => connected(first) && connected(second), 10_000);
}

beforeAll(async () => {
  redis = await TestRedisServer.start();
  const env = { ...adminTestEnv, REDIS_URL: redis.url, TOLLGATE_REVOCATION_MAX_STALENESS_SECONDS: String(stalenessSeconds) };
  first = await startTestGateway({ env, tiers: adminTestTiers() });
  second = await startTestGateway({ env, tiers: adminTestTiers(), shareWith: first });
  operator = await signUpOperator(first, ['SUPPORT']);
});

afterAll(async () => {
  await second?.close();
  await first?.close();
  await redis?.stop();
});

describe('revocation with Redis flushed', () => {
  it('keeps a revoked session revoked after FLUSHALL', async () => {
    const user = await signUp(first);
    await first.graphql('mutation { logout }', { token: user.accessToken });
    await redis.flushAll();
    const fresh = await startTestGateway({ env: { REDIS_URL: redis.url }, shareWith: first });
    try {
      expect(errorCode(await fresh.graphql(me, { token: user.accessToken }))).toBe('TOKEN_REVOKED');
    } finally {
      await fresh.close();
    }
  });

  it('rewrites the Redis record from PostgreSQL', async () => {
    const user = await signUp(first);
    await first.graphql('mutation { logout }', { token: user.accessToken });
    await redis.flushAll();
    await second.graphql(me, { token: operator.accessToken });
    const record = await redis.withClient((client) => client.get(`${first.redisPrefix}rv:s:${user.sessionId}`));

    expect(record).toBe('1');
  });
});

describe('revocation with Redis unreachable', () => {
  let user: SignedIn;
  let revokedBefore: SignedIn;
  let revokedDuring: SignedIn;

  beforeAll(async () => {
    user = await signUp(first);
    revokedBefore = await signUp(first);
    revokedDuring = await signUp(first);
    await first.graphql('mutation { logout }', { token: revokedBefore.accessToken });
    await stopRedis();
  });

  afterAll(async () => {
    if (!connected(first)) await restartRedis();
  });

  it('serves LOW fields from the in-process view', async () => {
    const response = await second.graphql(me, { token: user.accessToken });

    expect(response.status).toBe(200);
    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('keeps refusing a session revoked before the outage', async () => {
    expect(errorCode(await second.graphql(me, { token: revokedBefore.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('fails CRITICAL fields closed at once', async () => {
    const response = await second.graphql(adminQuery, { token: operator.accessToken, variables: { id: user.userId } });

    expect(response.status).toBe(503);
    expect(errorCode(response)).toBe('SERVICE_UNAVAILABLE');
    expect(response.body.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('refuses on the revoking instance a session revoked during the outage', async () => {
    const logout = await first.graphql('mutation { logout }', { token: revokedDuring.accessToken });

    expect(errorCode(logout)).toBe('SERVICE_UNAVAILABLE');
    expect(errorCode(await first.graphql(me, { token: revokedDuring.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('fails LOW fields closed past the staleness bound', async () => {
    (first.clock as ManualClock).advance(stalenessSeconds + 1);
    const response = await second.graphql(me, { token: user.accessToken });

    expect(response.status).toBe(503);
    expect(errorCode(response)).toBe('SERVICE_UNAVAILABLE');
  });

  it('recovers without a restart when Redis returns empty', async () => {
    await restartRedis();
    await waitFor(async () => (await second.graphql(me, { token: user.accessToken })).status === 200);
    const critical = await second.graphql(adminQuery, { token: operator.accessToken, variables: { id: user.userId } });

    expect(critical.body.errors).toBeUndefined();
  });

  it('refuses everywhere after recovery a session revoked during the outage', async () => {
    expect(errorCode(await second.graphql(me, { token: revokedDuring.accessToken }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await second.graphql(me, { token: revokedBefore.accessToken }))).toBe('TOKEN_REVOKED');
  });
});
