import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { verifyAuditChain } from '../../src/audit/index.ts';
import { runCli } from '../../src/cli/index.ts';
import { errorCode } from '../helpers/flows.ts';
import { cliFor } from '../helpers/cli.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let first: TestGateway;
let second: TestGateway;

const oldSessions = 10_000;
const newSessions = 500;

/**
 * Inserts 100 users, each with 10 devices on app versions below 2.3.0 holding 10 sessions each,
 * and one device on 2.4.0 holding 5 sessions: 10,000 sessions to revoke and 500 to keep.
 */
async function insertFleet(gateway: TestGateway): Promise<void> {
  await sql(gateway, `INSERT INTO users (id, email, password_hash, created_at, updated_at)
    SELECT gen_random_uuid(), 'fleet-' || g || '@example.com', 'not-a-hash', now(), now() FROM generate_series(1, 100) g`);
  await sql(gateway, `INSERT INTO devices (id, user_id, platform, app_version, created_at, last_seen_at)
    SELECT gen_random_uuid(), u.id, 'ANDROID', CASE WHEN d = 11 THEN '2.4.0' WHEN d % 2 = 0 THEN '2.2.9' ELSE '2.1' END, now(), now()
    FROM users u CROSS JOIN generate_series(1, 11) d WHERE u.email LIKE 'fleet-%'`);
  await sql(gateway, `INSERT INTO sessions (id, user_id, device_id, scopes, acr, amr, auth_time, created_at, last_used_at, idle_expires_at, absolute_expires_at)
    SELECT gen_random_uuid(), d.user_id, d.id, ARRAY['profile'], 'aal1', ARRAY['pwd'], $1, $1, $1, $1::timestamptz + interval '30 days', $1::timestamptz + interval '90 days'
    FROM devices d CROSS JOIN generate_series(1, CASE WHEN d.app_version = '2.4.0' THEN 5 ELSE 10 END) s`, [gateway.clock.now()]);
}

beforeAll(async () => {
  first = await startTestGateway();
  second = await startTestGateway({ shareWith: first });
  await insertFleet(first);
}, 120_000);

afterAll(async () => {
  await second?.close();
  await first?.close();
});

describe('bulk revocation by app version', () => {
  let jobId: string;
  let sampleToken: string;
  let pausedAt: number;

  it('counts matching sessions on a dry run', async () => {
    const bulk = first.tollgate.services.bulkRevocations;

    expect(await bulk.count(bulk.parseCriteria({ appVersion: '<2.3.0' }))).toBe(oldSessions);
  });

  it('prints the count from the CLI dry run', async () => {
    const { io, out } = cliFor(first);
    const status = await runCli(['sessions', 'revoke', '--app-version', '<2.3.0', '--dry-run'], io);

    expect(status).toBe(0);
    expect(out.join('')).toContain(`${oldSessions} active sessions match`);
  });

  it('pauses when interrupted between batches', async () => {
    const bulk = first.tollgate.services.bulkRevocations;
    const [session] = await sql<{ id: string; user_id: string; device_id: string }>(first, `SELECT s.id, s.user_id, s.device_id FROM sessions s JOIN devices d ON d.id = s.device_id WHERE d.app_version = '2.2.9' ORDER BY s.id DESC LIMIT 1`);
    const issued = await first.tollgate.services.access.issue({ userId: session?.user_id as string, sessionId: session?.id as string, deviceId: session?.device_id as string, scopes: ['profile'], acr: 'aal1', amr: ['pwd'], authTime: first.clock.now() });
    sampleToken = issued.token;

    const job = await bulk.create(bulk.parseCriteria({ appVersion: '<2.3.0' }), { reason: 'leaked build 2.2.x', actor: 'cli:alice' });
    jobId = job.id;
    const controller = new AbortController();
    const paused = await bulk.run(job.id, {
      signal: controller.signal,
      onProgress: ({ batches }) => {
        if (batches === 3) controller.abort();
      },
    });
    pausedAt = paused.revoked;

    expect(paused.status).toBe('paused');
    expect(paused.revoked).toBe(1500);
  });

  it('resumes from the CLI without double effects', async () => {
    const { io, out, err } = cliFor(first);
    const started = performance.now();
    const status = await runCli(['sessions', 'resume', jobId], io);
    console.info(`bulk revocation: resumed job revoked ${oldSessions - pausedAt} sessions in ${(performance.now() - started).toFixed(0)} ms`);
    const [counts] = await sql<{ revoked: string; kept: string }>(
      first,
      `SELECT count(*) FILTER (WHERE s.revoked_at IS NOT NULL AND d.app_version <> '2.4.0') AS revoked, count(*) FILTER (WHERE s.revoked_at IS NULL AND d.app_version = '2.4.0') AS kept FROM sessions s JOIN devices d ON d.id = s.device_id WHERE d.user_id IN (SELECT id FROM users WHERE email LIKE 'fleet-%')`,
    );

    expect(status).toBe(0);
    expect(out.join('')).toContain(`revoked ${oldSessions} sessions`);
    expect(err.join('')).toContain(`revoked ${oldSessions}/${oldSessions} (100%)`);
    expect(Number(counts?.revoked)).toBe(oldSessions);
    expect(Number(counts?.kept)).toBe(newSessions);
    expect(pausedAt).toBeLessThan(oldSessions);
  });

  it('audits one event per batch and a summary', async () => {
    const batches = await sql<{ count: number; actor: string }>(first, `SELECT (data->>'count')::int AS count, actor FROM audit_events WHERE type = 'sessions.revoked_batch' AND data->>'jobId' = $1`, [jobId]);
    const summaries = await sql<{ revoked: number }>(first, `SELECT (data->>'revoked')::int AS revoked FROM audit_events WHERE type = 'sessions.bulk_revocation_finished' AND data->>'jobId' = $1`, [jobId]);

    expect(batches).toHaveLength(oldSessions / 500);
    expect(batches.reduce((sum, batch) => sum + batch.count, 0)).toBe(oldSessions);
    expect(new Set(batches.map((batch) => batch.actor))).toEqual(new Set(['cli:alice']));
    expect(summaries).toEqual([{ revoked: oldSessions }]);
  });

  it('keeps the audit chain intact', async () => {
    await first.tollgate.services.auditChainer.chainAll();
    expect((await verifyAuditChain(first.tollgate.services.database.prisma)).ok).toBe(true);
  });

  it('refuses a revoked session on the other instance', async () => {
    const response = await second.graphql('{ me { id } }', { token: sampleToken });

    expect(errorCode(response)).toBe('TOKEN_REVOKED');
  });

  it('finishes a resumed job only once', async () => {
    const again = await first.tollgate.services.bulkRevocations.run(jobId);
    const [summaries] = await sql<{ count: string }>(first, `SELECT count(*) AS count FROM audit_events WHERE type = 'sessions.bulk_revocation_finished' AND data->>'jobId' = $1`, [jobId]);

    expect(again.status).toBe('finished');
    expect(Number(summaries?.count)).toBe(1);
  });
});
