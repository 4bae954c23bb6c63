import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { epochSeconds, type ManualClock } from '../../src/clock.ts';
import { errorCode } from '../helpers/flows.ts';
import { createDeviceKey, dpopGraphql, pairOf, reasonOf, refreshWithProof, signUpWithKey, type DeviceKey, type KeyBoundUser } from '../helpers/dpop.ts';
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

async function auditTypes(target: TestGateway, sessionId: string): Promise<string[]> {
  const rows = await sql<{ type: string }>(target, 'SELECT type FROM audit_events WHERE session_id = $1 ORDER BY id', [sessionId]);
  return rows.map((row) => row.type);
}

async function refreshTokenCount(target: TestGateway, sessionId: string): Promise<number> {
  const rows = await sql<{ count: string }>(target, 'SELECT count(*) FROM refresh_tokens WHERE session_id = $1', [sessionId]);
  return Number(rows[0]?.count);
}

async function sessionRevoked(target: TestGateway, sessionId: string): Promise<boolean> {
  const rows = await sql<{ revoked_at: Date | null }>(target, 'SELECT revoked_at FROM sessions WHERE id = $1', [sessionId]);
  return rows[0]?.revoked_at !== null;
}

async function signedUp(): Promise<{ key: DeviceKey; user: KeyBoundUser }> {
  const key = await createDeviceKey();
  return { key, user: await signUpWithKey(gateway, key) };
}

describe('refresh of a key-bound session', () => {
  it('rotates with a proof from the device key', async () => {
    const { key, user } = await signedUp();
    const pair = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    const me = await dpopGraphql(gateway, key, pair.accessToken, '{ me { id } }');

    expect(pair.tokenType).toBe('DPoP');
    expect(me.body.data?.me).toEqual({ id: user.userId });
  });

  it('rejects a refresh without a proof', async () => {
    const { key, user } = await signedUp();
    const before = await refreshTokenCount(gateway, user.sessionId);
    const response = await refreshWithProof(gateway, null, user.refreshToken);

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('DEVICE_MISMATCH');
    expect(await refreshTokenCount(gateway, user.sessionId)).toBe(before);
    expect(await auditTypes(gateway, user.sessionId)).toContain('refresh.device_mismatch');
    expect(pairOf(await refreshWithProof(gateway, key, user.refreshToken)).tokenType).toBe('DPoP');
  });

  it('rejects a stolen token from a second key', async () => {
    const { key, user } = await signedUp();
    const thief = await createDeviceKey();
    const before = await refreshTokenCount(gateway, user.sessionId);
    const response = await refreshWithProof(gateway, thief, user.refreshToken);

    expect(errorCode(response)).toBe('DEVICE_MISMATCH');
    expect(response.body.data ?? null).toBeNull();
    expect(await refreshTokenCount(gateway, user.sessionId)).toBe(before);
    expect(await sessionRevoked(gateway, user.sessionId)).toBe(false);
    expect(errorCode(await refreshWithProof(gateway, key, user.refreshToken))).toBeUndefined();
  });

  it('rejects an invalid proof first', async () => {
    const { key, user } = await signedUp();
    const response = await refreshWithProof(gateway, key, user.refreshToken, { iat: epochSeconds(clock.now()) - 120 });

    expect(errorCode(response)).toBe('DPOP_PROOF_INVALID');
    expect(reasonOf(response)).toBe('stale_iat');
    expect(response.headers['www-authenticate']).toContain('error="invalid_dpop_proof"');
  });

  it('rejects a proof for another URL', async () => {
    const { key, user } = await signedUp();
    const response = await refreshWithProof(gateway, key, user.refreshToken, { htu: 'http://127.0.0.1:4000/refresh' });

    expect(reasonOf(response)).toBe('htu_mismatch');
  });

  it('repeats the pair for a retry in grace', async () => {
    const { key, user } = await signedUp();
    const first = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(5);
    const retry = pairOf(await refreshWithProof(gateway, key, user.refreshToken));

    expect(retry).toEqual(first);
  });

  it('treats a retry in grace from another key as theft', async () => {
    const { key, user } = await signedUp();
    pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    const response = await refreshWithProof(gateway, await createDeviceKey(), user.refreshToken);

    expect(errorCode(response)).toBe('REFRESH_TOKEN_REUSED');
    expect(await sessionRevoked(gateway, user.sessionId)).toBe(true);
  });

  it('recovers a lost response with the device key', async () => {
    const { key, user } = await signedUp();
    const lost = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(30);
    const recovered = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    const me = await dpopGraphql(gateway, key, recovered.accessToken, '{ me { id } }');
    const replaced = await refreshWithProof(gateway, key, lost.refreshToken);
    const next = await refreshWithProof(gateway, key, recovered.refreshToken);

    expect(recovered.refreshToken).not.toBe(lost.refreshToken);
    expect(me.body.data?.me).toEqual({ id: user.userId });
    expect(errorCode(replaced)).toBe('REFRESH_TOKEN_INVALID');
    expect(errorCode(next)).toBeUndefined();
    expect(await sessionRevoked(gateway, user.sessionId)).toBe(false);
    expect(await auditTypes(gateway, user.sessionId)).toContain('refresh.lost_response_recovered');
  });

  it('repeats the recovered pair for a retry', async () => {
    const { key, user } = await signedUp();
    pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(30);
    const recovered = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    const retry = pairOf(await refreshWithProof(gateway, key, user.refreshToken));

    expect(retry).toEqual(recovered);
  });

  it('revokes on late reuse without a proof', async () => {
    const { key, user } = await signedUp();
    const successor = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(30);
    const replay = await refreshWithProof(gateway, null, user.refreshToken);

    expect(errorCode(replay)).toBe('REFRESH_TOKEN_REUSED');
    expect(errorCode(await refreshWithProof(gateway, key, successor.refreshToken))).toBe('SESSION_REVOKED');
    expect(errorCode(await dpopGraphql(gateway, key, successor.accessToken, '{ me { id } }'))).toBe('TOKEN_REVOKED');
  });

  it('revokes on late reuse from another key', async () => {
    const { key, user } = await signedUp();
    pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(30);
    const replay = await refreshWithProof(gateway, await createDeviceKey(), user.refreshToken);

    expect(errorCode(replay)).toBe('REFRESH_TOKEN_REUSED');
    expect(await sessionRevoked(gateway, user.sessionId)).toBe(true);
  });

  it('keeps one successor under 10 concurrent refreshes', async () => {
    const { key, user } = await signedUp();
    const responses = await Promise.all(Array.from({ length: 10 }, () => refreshWithProof(gateway, key, user.refreshToken)));
    const pairs = responses.map(pairOf);

    expect(new Set(pairs.map((pair) => pair.refreshToken)).size).toBe(1);
    expect(await refreshTokenCount(gateway, user.sessionId)).toBe(2);
  });

  it('keeps one successor under concurrent recoveries', async () => {
    const { key, user } = await signedUp();
    pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(30);
    const responses = await Promise.all(Array.from({ length: 5 }, () => refreshWithProof(gateway, key, user.refreshToken)));
    const pairs = responses.map(pairOf);
    const live = await sql<{ count: string }>(gateway, 'SELECT count(*) FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL', [user.sessionId]);

    expect(new Set(pairs.map((pair) => pair.refreshToken)).size).toBe(1);
    expect(Number(live[0]?.count)).toBe(1);
  });
});

describe('refresh device mismatch with the revoking policy', () => {
  let strict: TestGateway;

  beforeAll(async () => {
    strict = await startTestGateway({ env: { TOLLGATE_REFRESH_DEVICE_MISMATCH_REVOKES: 'true' } });
  });

  afterAll(async () => {
    await strict?.close();
  });

  it('revokes the session and broadcasts it', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(strict, key);
    const response = await refreshWithProof(strict, await createDeviceKey(), user.refreshToken);

    expect(errorCode(response)).toBe('DEVICE_MISMATCH');
    expect(await sessionRevoked(strict, user.sessionId)).toBe(true);
    expect(errorCode(await dpopGraphql(strict, key, user.accessToken, '{ me { id } }'))).toBe('TOKEN_REVOKED');
    expect(errorCode(await refreshWithProof(strict, key, user.refreshToken))).toBe('SESSION_REVOKED');
  });
});
