import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { MasterKeyMismatchError, SigningKeyRing } from '../../src/tokens/keyring.ts';
import { errorCode, refresh, signUp } from '../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;
let clock: ManualClock;

beforeAll(async () => {
  gateway = await startTestGateway();
  clock = gateway.clock as ManualClock;
});

afterAll(async () => {
  await gateway?.close();
});

function kidOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}

async function jwks(): Promise<{ status: number; cacheControl: string; kids: string[] }> {
  const response = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  const body = response.json() as { keys: Array<{ kid: string; d?: string }> };
  expect(body.keys.every((key) => key.d === undefined)).toBe(true);
  return { status: response.statusCode, cacheControl: String(response.headers['cache-control']), kids: body.keys.map((key) => key.kid) };
}

describe('signing-key ring', () => {
  it('starts with an active and a next key, both published', async () => {
    const keys = await sql<{ state: string }>(gateway, 'SELECT state FROM signing_keys ORDER BY state::text');
    const published = await jwks();

    expect(keys.map((key) => key.state)).toEqual(['ACTIVE', 'NEXT']);
    expect(published.kids).toHaveLength(2);
    expect(published.cacheControl).toMatch(/max-age=\d+/);
  });

  it('stores private keys sealed, never as plain JWK', async () => {
    const rows = await sql<{ private_key_encrypted: Buffer }>(gateway, 'SELECT private_key_encrypted FROM signing_keys');

    for (const row of rows) expect(row.private_key_encrypted.toString('utf8')).not.toContain('"d"');
  });

  it('rotates to the published next key and keeps old tokens valid until they expire', async () => {
    const user = await signUp(gateway);
    const before = await jwks();
    const oldKid = kidOf(user.accessToken);

    const { activeKid, retiredKid } = await gateway.tollgate.services.ring.rotate();
    expect(retiredKid).toBe(oldKid);
    expect(before.kids).toContain(activeKid);

    expect((await gateway.graphql('{ me { id } }', { token: user.accessToken })).status).toBe(200);
    const pair = (await refresh(gateway, user.refreshToken)).body.data?.refreshSession as { accessToken: string };
    expect(kidOf(pair.accessToken)).toBe(activeKid);
    expect((await jwks()).kids).toEqual(expect.arrayContaining([oldKid, activeKid]));

    clock.advance(300 + 30 + 1);
    expect((await jwks()).kids).not.toContain(oldKid);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_EXPIRED');
  });

  it('creates keys once when two instances start together', async () => {
    const [a, b] = await Promise.all([gateway.tollgate.services.ring.ensureKeys(), gateway.tollgate.services.ring.ensureKeys()]);
    const counts = await sql<{ state: string; count: string }>(gateway, "SELECT state, count(*) FROM signing_keys WHERE state <> 'RETIRED' GROUP BY state ORDER BY state::text");

    expect([a, b]).toEqual([undefined, undefined]);
    expect(counts.map((row) => [row.state, Number(row.count)])).toEqual([
      ['ACTIVE', 1],
      ['NEXT', 1],
    ]);
  });

  it('creates kids the CLI reads as arguments', async () => {
    const kids = await sql<{ kid: string }>(gateway, 'SELECT kid FROM signing_keys');

    expect(kids.length).toBeGreaterThan(0);
    for (const { kid } of kids) expect(kid).toMatch(/^[0-9a-f]{16}-[0-9a-f]{8}$/);
  });

  it('names the master key on mismatch', async () => {
    const ring = new SigningKeyRing({
      db: gateway.tollgate.services.database.prisma,
      state: gateway.tollgate.services.state,
      clock,
      logger: gateway.tollgate.services.logger,
      masterKey: randomBytes(32),
      verificationOverlapSeconds: 330,
    });

    await expect(ring.reload()).rejects.toThrow(MasterKeyMismatchError);
    await expect(ring.reload()).rejects.toThrow(/TOLLGATE_MASTER_KEY/);
  });
});
