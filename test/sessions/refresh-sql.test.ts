import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hashRefreshToken } from '../../src/sessions/service.ts';
import { RefreshSql, type RotationWrite } from '../../src/sessions/rotation-sql.ts';
import { errorCode, refresh, signUp } from '../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;
let refreshSql: RefreshSql;

beforeAll(async () => {
  gateway = await startTestGateway();
  refreshSql = new RefreshSql(gateway.tollgate.services.database.pool);
});

afterAll(async () => {
  await gateway?.close();
});

/** Builds the writes of a rotation of `token` from the session as read now, with one audit row. */
async function rotationOf(token: string): Promise<RotationWrite> {
  const read = await refreshSql.read(hashRefreshToken(token));
  if (!read) throw new Error('the token is unknown');
  const now = gateway.clock.now();
  return {
    sessionVersion: read.sessionVersion,
    successorId: randomUUID(),
    successorHash: hashRefreshToken(`successor-${randomUUID()}`),
    predecessorId: read.token.id,
    grandparentId: read.token.parentId,
    sessionId: read.session.id,
    now,
    idleExpiresAt: new Date(now.getTime() + 3_600_000),
    absoluteExpiresAt: read.session.absoluteExpiresAt,
    graceResult: new Uint8Array([1, 2, 3]),
    audit: [gateway.tollgate.services.audit.row({ type: 'token.rotated', sessionId: read.session.id, data: { parentTokenId: read.token.id } })],
  };
}

async function countRows(sessionId: string): Promise<{ tokens: number; audits: number }> {
  const [row] = await sql<{ tokens: number; audits: number }>(
    gateway,
    `SELECT (SELECT count(*)::int FROM refresh_tokens WHERE session_id = $1) AS tokens,
            (SELECT count(*)::int FROM audit_events WHERE session_id = $1 AND type = 'token.rotated') AS audits`,
    [sessionId],
  );
  return row as { tokens: number; audits: number };
}

describe('driver-level refresh rotation', () => {
  it('rotates in two SQL statements', async () => {
    const user = await signUp(gateway);
    await gateway.tollgate.services.auditChainer.stop();
    const before = gateway.tollgate.services.database.queryCount();

    const response = await refresh(gateway, user.refreshToken);
    const sent = gateway.tollgate.services.database.queryCount() - before;
    gateway.tollgate.services.auditChainer.start();

    expect((response.body.data?.refreshSession as { refreshToken?: unknown } | undefined)?.refreshToken).toBeTypeOf('string');
    // One read, then one statement that writes the successor, the predecessor, the session and the audit rows.
    expect(sent).toBe(2);
  });

  it('writes the risk decision with the rotation', async () => {
    const user = await signUp(gateway);
    await refresh(gateway, user.refreshToken);
    const rows = await sql<{ type: string }>(gateway, `SELECT type FROM audit_events WHERE session_id = $1 AND type IN ('risk.decision', 'token.rotated') ORDER BY id`, [user.sessionId]);

    expect(rows.map((row) => row.type)).toEqual(['risk.decision', 'token.rotated']);
  });

  it('links the rows it writes into the audit chain', async () => {
    const user = await signUp(gateway);
    await refresh(gateway, user.refreshToken);
    await gateway.tollgate.services.auditChainer.chainAll();
    const rows = await sql<{ seq: string | null }>(gateway, `SELECT seq FROM audit_events WHERE session_id = $1`, [user.sessionId]);

    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((row) => row.seq !== null)).toBe(true);
  });

  it('writes nothing after the session changed', async () => {
    const user = await signUp(gateway);
    const write = await rotationOf(user.refreshToken);
    await sql(gateway, `UPDATE sessions SET last_used_at = last_used_at WHERE id = $1`, [user.sessionId]);

    expect(await refreshSql.write(write)).toBe(false);
    expect(await countRows(user.sessionId)).toEqual({ tokens: 1, audits: 0 });
  });

  it('writes nothing after a revocation', async () => {
    const user = await signUp(gateway);
    const write = await rotationOf(user.refreshToken);
    await gateway.graphql('mutation { logout }', { token: user.accessToken });

    expect(await refreshSql.write(write)).toBe(false);
    expect(await countRows(user.sessionId)).toEqual({ tokens: 1, audits: 0 });
    expect(errorCode(await refresh(gateway, user.refreshToken))).toBe('SESSION_REVOKED');
  });

  it('leaves the session alone for a rotated token', async () => {
    const user = await signUp(gateway);
    const write = await rotationOf(user.refreshToken);
    await sql(gateway, `UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1`, [write.predecessorId]);
    const [before] = await sql<{ version: string }>(gateway, `SELECT xmin::text AS version FROM sessions WHERE id = $1`, [user.sessionId]);

    expect(await refreshSql.write(write)).toBe(false);
    const [after] = await sql<{ version: string }>(gateway, `SELECT xmin::text AS version FROM sessions WHERE id = $1`, [user.sessionId]);
    expect(after?.version).toBe(before?.version);
  });

  it('lets one of two racing writes through', async () => {
    const user = await signUp(gateway);
    const first = await rotationOf(user.refreshToken);
    const second = await rotationOf(user.refreshToken);
    const results = await Promise.all([refreshSql.write(first), refreshSql.write(second)]);

    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await countRows(user.sessionId)).toEqual({ tokens: 2, audits: 1 });
  });

  it('keeps one grace result per session', async () => {
    const user = await signUp(gateway);
    let token = user.refreshToken;
    for (let i = 0; i < 3; i += 1) {
      const response = await refresh(gateway, token);
      token = (response.body.data?.refreshSession as { refreshToken: string }).refreshToken;
    }
    const rows = await sql<{ graced: number; tokens: number }>(
      gateway,
      `SELECT count(*) FILTER (WHERE grace_result IS NOT NULL)::int AS graced, count(*)::int AS tokens FROM refresh_tokens WHERE session_id = $1`,
      [user.sessionId],
    );

    expect(rows[0]).toEqual({ graced: 1, tokens: 4 });
  });

  it('reads nothing for an unknown token', async () => {
    expect(await refreshSql.read(hashRefreshToken('x'.repeat(43)))).toBeUndefined();
  });
});
