import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { errorCode, refresh, signUp } from '../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;
let clock: ManualClock;

beforeAll(async () => {
  gateway = await startTestGateway({ env: { TOLLGATE_SESSION_IDLE_SECONDS: '3600', TOLLGATE_SESSION_ABSOLUTE_SECONDS: '7200' } });
  clock = gateway.clock as ManualClock;
});

afterAll(async () => {
  await gateway?.close();
});

type Pair = { accessToken: string; refreshToken: string };

function pairOf(response: Awaited<ReturnType<typeof refresh>>): Pair {
  const pair = response.body.data?.refreshSession as Pair | undefined;
  if (!pair) throw new Error(`refresh failed: ${JSON.stringify(response.body.errors)}`);
  return pair;
}

async function auditTypes(sessionId: string): Promise<string[]> {
  const rows = await sql<{ type: string }>(gateway, 'SELECT type FROM audit_events WHERE session_id = $1 ORDER BY id', [sessionId]);
  return rows.map((row) => row.type);
}

describe('refresh-token rotation', () => {
  it('stores only the SHA-256 hash of refresh tokens', async () => {
    const user = await signUp(gateway);
    const rows = await sql<{ token_hash: Buffer }>(gateway, 'SELECT token_hash FROM refresh_tokens WHERE session_id = $1', [user.sessionId]);

    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash.length).toBe(32);
    expect(rows[0]?.token_hash.toString('base64url')).not.toBe(user.refreshToken);
  });

  it('returns the same pair for a replay inside the grace window', async () => {
    const user = await signUp(gateway);
    const first = pairOf(await refresh(gateway, user.refreshToken));
    clock.advance(9);
    const replay = pairOf(await refresh(gateway, user.refreshToken));

    expect(replay).toEqual(first);
    expect((await gateway.graphql('{ me { id } }', { token: first.accessToken })).body.data?.me).toEqual({ id: user.userId });
  });

  it('revokes the session when a rotated token returns after the grace window', async () => {
    const user = await signUp(gateway);
    const successor = pairOf(await refresh(gateway, user.refreshToken));
    clock.advance(11);
    const replay = await refresh(gateway, user.refreshToken);

    expect(replay.status).toBe(401);
    expect(errorCode(replay)).toBe('REFRESH_TOKEN_REUSED');
    expect(errorCode(await refresh(gateway, successor.refreshToken))).toBe('SESSION_REVOKED');
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: successor.accessToken }))).toBe('TOKEN_REVOKED');
    expect(await auditTypes(user.sessionId)).toContain('refresh.reuse_detected');
  });

  it('treats an older ancestor as reuse even inside the grace window', async () => {
    const user = await signUp(gateway);
    const second = pairOf(await refresh(gateway, user.refreshToken));
    pairOf(await refresh(gateway, second.refreshToken));
    const replay = await refresh(gateway, user.refreshToken);

    expect(errorCode(replay)).toBe('REFRESH_TOKEN_REUSED');
  });

  it('keeps one successor under 20 concurrent refreshes', async () => {
    const user = await signUp(gateway);
    const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(gateway, user.refreshToken)));
    const pairs = responses.map(pairOf);

    expect(new Set(pairs.map((pair) => pair.refreshToken)).size).toBe(1);
    expect(new Set(pairs.map((pair) => pair.accessToken)).size).toBe(1);
    const rows = await sql<{ count: string }>(gateway, 'SELECT count(*) FROM refresh_tokens WHERE session_id = $1', [user.sessionId]);
    expect(Number(rows[0]?.count)).toBe(2);
    const session = await sql<{ revoked_at: Date | null }>(gateway, 'SELECT revoked_at FROM sessions WHERE id = $1', [user.sessionId]);
    expect(session[0]?.revoked_at).toBeNull();
    expect(pairOf(await refresh(gateway, pairs[0]!.refreshToken)).refreshToken).toBeTruthy();
  });

  it('rejects unknown and malformed refresh tokens', async () => {
    for (const token of ['', 'not-a-token', 'A'.repeat(43), `${'x'.repeat(42)}!`, 'a'.repeat(10_000)]) {
      const response = await refresh(gateway, token);
      expect(errorCode(response), token.slice(0, 20)).toBe('REFRESH_TOKEN_INVALID');
      expect(response.status).toBe(401);
    }
  });

  it('expires an idle session', async () => {
    const user = await signUp(gateway);
    clock.advance(3601);
    const response = await refresh(gateway, user.refreshToken);

    expect(errorCode(response)).toBe('SESSION_EXPIRED');
  });

  it('expires a session at its absolute lifetime despite refreshes', async () => {
    const user = await signUp(gateway);
    let token = user.refreshToken;
    for (let hour = 0; hour < 2; hour += 1) {
      clock.advance(3500);
      token = pairOf(await refresh(gateway, token)).refreshToken;
    }
    clock.advance(300);
    const response = await refresh(gateway, token);

    expect(errorCode(response)).toBe('SESSION_EXPIRED');
  });

  it('never makes auth_time fresher on refresh', async () => {
    const user = await signUp(gateway);
    const before = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString()) as { auth_time: number };
    clock.advance(120);
    const pair = pairOf(await refresh(gateway, user.refreshToken));
    const after = JSON.parse(Buffer.from(pair.accessToken.split('.')[1]!, 'base64url').toString()) as { auth_time: number; iat: number };

    expect(after.auth_time).toBe(before.auth_time);
    expect(after.iat).toBeGreaterThan(before.auth_time);
  });

  it('records issue, rotation and failure events without token values', async () => {
    const user = await signUp(gateway);
    const pair = pairOf(await refresh(gateway, user.refreshToken));
    const rows = await sql<{ type: string; data: unknown; reason: string | null }>(gateway, 'SELECT type, data, reason FROM audit_events WHERE session_id = $1', [user.sessionId]);
    const text = JSON.stringify(rows);

    expect(rows.map((row) => row.type)).toEqual(expect.arrayContaining(['token.issued', 'token.rotated']));
    expect(text).not.toContain(user.refreshToken);
    expect(text).not.toContain(pair.refreshToken);
    expect(text).not.toContain(pair.accessToken.split('.')[2]);
  });
});
