import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';
import type { ManualClock } from '../../src/clock.ts';
import { cliFor } from '../helpers/cli.ts';
import { errorCode, login, signUp } from '../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { waitFor } from '../helpers/redis-server.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

const me = '{ me { id } }';

async function cli(...argv: string[]) {
  const { io, out, err } = cliFor(gateway);
  const status = await runCli(argv, io);
  return { status, out: out.join(''), err: err.join('') };
}

async function deviceOf(sessionId: string): Promise<string> {
  const [row] = await sql<{ device_id: string }>(gateway, 'SELECT device_id FROM sessions WHERE id = $1', [sessionId]);
  return row?.device_id as string;
}

describe('tollgate CLI usage', () => {
  it('prints help', async () => {
    const result = await cli('help');

    expect(result.status).toBe(0);
    expect(result.out).toContain('sessions revoke');
  });

  it('rejects an unknown command', async () => {
    expect((await cli('sessions', 'explode')).status).toBe(2);
  });

  it('rejects a missing argument', async () => {
    const result = await cli('devices', 'suspend');

    expect(result.status).toBe(2);
    expect(result.err).toContain('usage: npx tollgate devices suspend');
  });

  it('requires DATABASE_URL', async () => {
    const { io, err } = cliFor(gateway);
    const status = await runCli(['audit', 'verify'], { ...io, env: { ...io.env, DATABASE_URL: undefined } });

    expect(status).toBe(2);
    expect(err.join('')).toContain('DATABASE_URL is not set');
  });
});

describe('tollgate sessions and devices', () => {
  it('revokes every session of a user', async () => {
    const user = await signUp(gateway);
    const other = await login(gateway, user.email, user.password);
    const result = await cli('sessions', 'revoke', '--user', user.userId, '--reason', 'account takeover');

    expect(result.status).toBe(0);
    expect(result.out).toContain('Revoked 2 sessions');
    expect(errorCode(await gateway.graphql(me, { token: other.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('suspends a device', async () => {
    const user = await signUp(gateway);
    const result = await cli('devices', 'suspend', await deviceOf(user.sessionId), '--reason', 'stolen phone');

    expect(result.status).toBe(0);
    expect(errorCode(await gateway.graphql(me, { token: user.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('restores a device', async () => {
    const user = await signUp(gateway);
    const deviceId = await deviceOf(user.sessionId);
    await cli('devices', 'suspend', deviceId);
    const result = await cli('devices', 'restore', deviceId);
    const [row] = await sql<{ suspended_at: Date | null }>(gateway, 'SELECT suspended_at FROM devices WHERE id = $1', [deviceId]);

    expect(result.status).toBe(0);
    expect(row?.suspended_at).toBeNull();
  });

  it('suspends and restores a user', async () => {
    const user = await signUp(gateway);
    const suspended = await cli('users', 'suspend', user.userId);
    const refused = await gateway.graphql('mutation($input: LoginInput!) { login(input: $input) { __typename } }', {
      variables: { input: { email: user.email, password: user.password, device: { platform: 'IOS' } } },
    });
    const restored = await cli('users', 'restore', user.userId);

    expect(suspended.status).toBe(0);
    expect(errorCode(refused)).toBe('FORBIDDEN');
    expect(restored.status).toBe(0);
  });

  it('records the operator in the audit trail', async () => {
    const user = await signUp(gateway);
    await cli('sessions', 'revoke', '--user', user.userId);
    const [event] = await sql<{ actor: string }>(gateway, `SELECT actor FROM audit_events WHERE type = 'user.revoked' AND user_id = $1`, [user.userId]);

    expect(event?.actor).toBe('cli:alice');
  });

  it('rejects an invalid criterion', async () => {
    const result = await cli('sessions', 'revoke', '--network', 'not-a-network', '--dry-run');

    expect(result.status).toBe(2);
    expect(result.err).toContain('criteria.lastSeenNetwork');
  });
});

describe('tollgate keys', () => {
  it('rotates without breaking live tokens', async () => {
    const user = await signUp(gateway);
    const before = gateway.tollgate.services.ring.signingKey().kid;
    const result = await cli('keys', 'rotate');
    expect(result.status, result.err).toBe(0);
    await waitFor(() => gateway.tollgate.services.ring.signingKey().kid !== before);

    expect((await gateway.graphql(me, { token: user.accessToken })).status).toBe(200);
  });

  it('revokes a leaked key and every token it signed', async () => {
    const user = await signUp(gateway);
    await gateway.graphql(me, { token: user.accessToken });
    const leaked = gateway.tollgate.services.ring.signingKey().kid;
    const result = await cli('keys', 'revoke', leaked, '--reason', 'key leaked in a log');
    expect(result.status, result.err).toBe(0);
    await waitFor(() => gateway.tollgate.services.ring.signingKey().kid !== leaked);
    const jwks = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });

    expect(errorCode(await gateway.graphql(me, { token: user.accessToken }))).toBe('TOKEN_INVALID');
    expect((jwks.json() as { keys: Array<{ kid: string }> }).keys.map((key) => key.kid)).not.toContain(leaked);
  });

  it('signs new tokens after revoking the active key', async () => {
    const leaked = gateway.tollgate.services.ring.signingKey().kid;
    const result = await cli('keys', 'revoke', leaked);
    expect(result.status, result.err).toBe(0);
    await waitFor(() => gateway.tollgate.services.ring.signingKey().kid !== leaked);
    const user = await signUp(gateway);

    expect((await gateway.graphql(me, { token: user.accessToken })).status).toBe(200);
  });

  it('lists keys with their revocation time', async () => {
    const result = await cli('keys', 'list');
    const keys = result.out.trim().split('\n').map((line) => JSON.parse(line) as { revokedAt: string | null });

    expect(keys.some((key) => key.revokedAt !== null)).toBe(true);
  });
});

describe('tollgate audit', () => {
  it('verifies an intact chain', async () => {
    const result = await cli('audit', 'verify');

    expect(result.status).toBe(0);
    expect(result.out).toContain('Audit chain intact');
  });

  it('exports a user events as JSON lines', async () => {
    const user = await signUp(gateway);
    const result = await cli('audit', 'export', '--user', user.userId);
    const events = result.out.trim().split('\n').map((line) => JSON.parse(line) as { userId: string; hash: string; type: string });

    expect(events.length).toBeGreaterThan(0);
    expect(events.every((event) => event.userId === user.userId)).toBe(true);
    expect(events[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('exports to a file', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tollgate-audit-')), 'audit.jsonl');
    const result = await cli('audit', 'export', '--type', 'user.signed_up', '--output', file);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');

    expect(result.status).toBe(0);
    expect(lines.every((line) => (JSON.parse(line) as { type: string }).type === 'user.signed_up')).toBe(true);
  });

  it('names the first broken row', async () => {
    await gateway.tollgate.services.auditChainer.chainAll();
    const [row] = await sql<{ seq: string }>(gateway, 'SELECT seq FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC OFFSET 3 LIMIT 1');
    await sql(gateway, 'ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only');
    await sql(gateway, `UPDATE audit_events SET ip = '192.0.2.1' WHERE seq = $1`, [row?.seq]);
    await sql(gateway, 'ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only');
    const result = await cli('audit', 'verify');

    expect(result.status).toBe(1);
    expect(result.out).toContain(`seq ${row?.seq} (hash_mismatch)`);
  });
});

describe('tollgate operators', () => {
  it('grants a role whose scopes apply at the next sign-in', async () => {
    const user = await signUp(gateway);
    const result = await cli('operators', 'grant', user.userId, 'SUPPORT');
    (gateway.clock as ManualClock).advance(1);
    const again = await login(gateway, user.email, user.password);
    const claims = await gateway.tollgate.services.access.verify(again.accessToken);

    expect(result.status).toBe(0);
    expect(claims.scope.split(' ')).toContain('admin:sessions:revoke');
  });

  it('revokes sessions when a role is taken away', async () => {
    const user = await signUp(gateway);
    await cli('operators', 'grant', user.userId, 'SECURITY_ENGINEER');
    const operator = await login(gateway, user.email, user.password);
    const result = await cli('operators', 'revoke', user.userId, 'SECURITY_ENGINEER');

    expect(result.status).toBe(0);
    expect(errorCode(await gateway.graphql(me, { token: operator.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('rejects an unknown role', async () => {
    const user = await signUp(gateway);

    expect((await cli('operators', 'grant', user.userId, 'ROOT')).status).toBe(2);
  });
});

describe('tollgate policy', () => {
  it('prints the policy report as JSON', async () => {
    const result = await cli('policy', '--json');

    expect(result.status).toBe(0);
    expect(JSON.parse(result.out)).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'Query', field: 'me' })]));
  }, 60_000);
});
