import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RevocationCriteria } from '../../src/sessions/criteria.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

/** Sessions named by their test label, with the attributes the criteria select on. */
const fleet = [
  { label: 'ios-old', platform: 'IOS', appVersion: '2.2.0', ip: '203.0.113.7', attestation: null, risk: 'LOW', created: '2026-01-10T00:00:00Z' },
  { label: 'android-new', platform: 'ANDROID', appVersion: '2.4.1', ip: '198.51.100.20', attestation: 'PASSED', risk: 'LOW', created: '2026-03-10T00:00:00Z' },
  { label: 'android-failed', platform: 'ANDROID', appVersion: '2.3.0', ip: '203.0.113.200', attestation: 'FAILED', risk: 'HIGH', created: '2026-02-10T00:00:00Z' },
  { label: 'web-v6', platform: 'WEB', appVersion: 'web', ip: '2001:db8::5', attestation: null, risk: 'MEDIUM', created: '2026-04-10T00:00:00Z' },
] as const;

const ids = new Map<string, { session: string; device: string; user: string }>();

beforeAll(async () => {
  gateway = await startTestGateway();
  for (const entry of fleet) {
    const [user] = await sql<{ id: string }>(gateway, `INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES (gen_random_uuid(), $1, 'x', now(), now()) RETURNING id`, [`${entry.label}@example.com`]);
    const [device] = await sql<{ id: string }>(
      gateway,
      `INSERT INTO devices (id, user_id, platform, app_version, attestation_status, created_at, last_seen_at) VALUES (gen_random_uuid(), $1, $2::"Platform", $3, $4, now(), now()) RETURNING id`,
      [user?.id, entry.platform, entry.appVersion, entry.attestation],
    );
    const [session] = await sql<{ id: string }>(
      gateway,
      `INSERT INTO sessions (id, user_id, device_id, scopes, acr, amr, auth_time, created_at, last_used_at, idle_expires_at, absolute_expires_at, last_ip, risk_level)
       VALUES (gen_random_uuid(), $1, $2, ARRAY['profile'], 'aal1', ARRAY['pwd'], $3, $3, $3, $4, $4, $5, $6) RETURNING id`,
      [user?.id, device?.id, entry.created, new Date(gateway.clock.now().getTime() + 86_400_000), entry.ip, entry.risk],
    );
    ids.set(entry.label, { session: session?.id as string, device: device?.id as string, user: user?.id as string });
  }
});

afterAll(async () => {
  await gateway?.close();
});

async function matching(criteria: Record<string, unknown>): Promise<string[]> {
  const bulk = gateway.tollgate.services.bulkRevocations;
  const parsed: RevocationCriteria = bulk.parseCriteria(criteria);
  const job = await bulk.create(parsed, { reason: 'criteria test', actor: 'system' });
  // A job that is never run leaves nothing revoked; the count alone tells which labels match.
  const labels: string[] = [];
  for (const [label, entry] of ids) {
    const single = bulk.parseCriteria({ ...criteria, sessionIds: [entry.session] });
    if ((await bulk.count(single)) === 1) labels.push(label);
  }
  expect(job.total).toBe(labels.length);
  return labels.sort();
}

describe('bulk revocation criteria', () => {
  it.each([
    { name: 'platform', criteria: { platforms: ['ANDROID'] }, expected: ['android-failed', 'android-new'] },
    { name: 'app version range', criteria: { appVersion: '<2.3.0' }, expected: ['ios-old'] },
    { name: 'app version interval', criteria: { appVersion: '>=2.3.0 <2.5.0' }, expected: ['android-failed', 'android-new'] },
    { name: 'IPv4 network', criteria: { lastSeenNetwork: '203.0.113.0/24' }, expected: ['android-failed', 'ios-old'] },
    { name: 'single address', criteria: { lastSeenNetwork: '198.51.100.20' }, expected: ['android-new'] },
    { name: 'IPv6 network', criteria: { lastSeenNetwork: '2001:db8::/32' }, expected: ['web-v6'] },
    { name: 'attestation missing', criteria: { attestation: ['MISSING'] }, expected: ['ios-old', 'web-v6'] },
    { name: 'attestation failed', criteria: { attestation: ['FAILED'] }, expected: ['android-failed'] },
    { name: 'risk level', criteria: { riskLevels: ['MEDIUM', 'HIGH'] }, expected: ['android-failed', 'web-v6'] },
    { name: 'created before', criteria: { createdBefore: '2026-02-15T00:00:00Z' }, expected: ['android-failed', 'ios-old'] },
    { name: 'created after', criteria: { createdAfter: '2026-03-01T00:00:00Z' }, expected: ['android-new', 'web-v6'] },
    { name: 'criteria combined', criteria: { platforms: ['ANDROID'], riskLevels: ['HIGH'] }, expected: ['android-failed'] },
  ])('selects by $name', async ({ criteria, expected }) => {
    expect(await matching(criteria)).toEqual(expected);
  });

  it('selects by user and device ids', async () => {
    const criteria = { userIds: [ids.get('ios-old')?.user], deviceIds: [ids.get('ios-old')?.device, ids.get('web-v6')?.device] };

    expect(await matching(criteria)).toEqual(['ios-old']);
  });

  it.each([
    { name: 'no criterion', criteria: {}, field: 'criteria' },
    { name: 'bad network', criteria: { lastSeenNetwork: '203.0.113.0/33' }, field: 'criteria.lastSeenNetwork' },
    { name: 'bad range', criteria: { appVersion: 'latest please' }, field: 'criteria.appVersion' },
    { name: 'unknown criterion', criteria: { everything: true }, field: 'criteria' },
  ])('rejects $name', ({ criteria, field }) => {
    expect(() => gateway.tollgate.services.bulkRevocations.parseCriteria(criteria)).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ field }) }));
  });
});
