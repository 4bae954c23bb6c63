import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, signUp } from '../helpers/flows.ts';
import { testRedisUrl } from '../helpers/env.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let first: TestGateway;
let second: TestGateway;
let redis: Redis;

beforeAll(async () => {
  first = await startTestGateway();
  second = await startTestGateway({ shareWith: first });
  redis = new Redis(testRedisUrl);
});

afterAll(async () => {
  redis?.disconnect();
  await second?.close();
  await first?.close();
});

/** Deletes every key of this deployment's prefix: what a Redis restart without persistence leaves. */
async function flushDeployment(): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${first.redisPrefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

describe('revocation across instances', () => {
  it('refuses a logged-out token on the other instance at its next request', async () => {
    const user = await signUp(first);
    expect((await second.graphql('{ me { id } }', { token: user.accessToken })).status).toBe(200);

    await first.graphql('mutation { logout }', { token: user.accessToken });
    const response = await second.graphql('{ me { id } }', { token: user.accessToken });

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('TOKEN_REVOKED');
  });

  it('keeps a revoked session revoked after Redis loses its data', async () => {
    const user = await signUp(first);
    await first.graphql('mutation { logout }', { token: user.accessToken });
    expect(await flushDeployment()).toBeGreaterThan(0);

    expect(errorCode(await second.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await first.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('rebuilds the Redis record from PostgreSQL for an instance that starts after the flush', async () => {
    const user = await signUp(first);
    await first.graphql('mutation { logout }', { token: user.accessToken });
    await flushDeployment();

    const third = await startTestGateway({ shareWith: first });
    try {
      expect(errorCode(await third.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_REVOKED');
      expect(await redis.exists(`${first.redisPrefix}rv:s:${user.sessionId}`)).toBe(1);
    } finally {
      await third.close();
    }
  });

  it('revokes other sessions on the other instance too', async () => {
    const user = await signUp(first);
    const other = await signUp(first);
    await second.graphql('mutation($id: ID!) { revokeSession(id: $id) }', { token: user.accessToken, variables: { id: user.sessionId } });

    expect(errorCode(await first.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_REVOKED');
    expect((await first.graphql('{ me { id } }', { token: other.accessToken })).status).toBe(200);
  });
});
