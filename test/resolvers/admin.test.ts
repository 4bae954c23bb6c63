import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { OperatorRole } from '../../src/authz/roles.ts';
import { errorCode, signUp, type SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { adminTestEnv, adminTestTiers, signUpOperator } from '../helpers/operators.ts';

let gateway: TestGateway;
let strict: TestGateway;
const tokens = new Map<OperatorRole | 'NONE', SignedIn>();

beforeAll(async () => {
  gateway = await startTestGateway({ env: adminTestEnv, tiers: adminTestTiers() });
  strict = await startTestGateway({ shareWith: gateway });
  for (const role of ['SECURITY_ENGINEER', 'PLATFORM_ENGINEER', 'SUPPORT'] as const) tokens.set(role, await signUpOperator(gateway, [role]));
  tokens.set('NONE', await signUp(gateway));
});

afterAll(async () => {
  await strict?.close();
  await gateway?.close();
});

const someId = randomUUID();

/** Every admin operation, called on ids that exist nowhere so an allowed call changes nothing. */
const operations: Array<{ name: string; query: string; roles: OperatorRole[] }> = [
  { name: 'adminUserSessions', query: `{ adminUserSessions(userId: "${someId}") { id } }`, roles: ['SECURITY_ENGINEER', 'SUPPORT'] },
  { name: 'adminUserDevices', query: `{ adminUserDevices(userId: "${someId}") { id } }`, roles: ['SECURITY_ENGINEER', 'SUPPORT'] },
  { name: 'adminAuditEvents', query: `{ adminAuditEvents(first: 1) { hasNextPage } }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminVerifyAudit', query: `{ adminVerifyAudit { ok } }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRevocationJob', query: `{ adminRevocationJob(id: "${someId}") { id } }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRevokeSession', query: `mutation { adminRevokeSession(id: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER', 'SUPPORT'] },
  {
    name: 'adminRevokeSessions',
    query: `mutation { adminRevokeSessions(criteria: { userIds: ["${someId}"] }, reason: "test") { matched } }`,
    roles: ['SECURITY_ENGINEER'],
  },
  { name: 'adminResumeRevocationJob', query: `mutation { adminResumeRevocationJob(id: "${someId}") { id } }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRevokeUser', query: `mutation { adminRevokeUser(userId: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRevokeTokenFamily', query: `mutation { adminRevokeTokenFamily(refreshTokenId: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminSuspendDevice', query: `mutation { adminSuspendDevice(id: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRestoreDevice', query: `mutation { adminRestoreDevice(id: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminSuspendUser', query: `mutation { adminSuspendUser(userId: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRestoreUser', query: `mutation { adminRestoreUser(userId: "${someId}", reason: "test") }`, roles: ['SECURITY_ENGINEER'] },
  { name: 'adminRevokeSigningKey', query: `mutation { adminRevokeSigningKey(kid: "no-such-kid") { activeKid } }`, roles: ['PLATFORM_ENGINEER'] },
  { name: 'adminRotateSigningKeys', query: `mutation { adminRotateSigningKeys { activeKid } }`, roles: ['PLATFORM_ENGINEER'] },
];

const cases = operations.flatMap((operation) =>
  (['SECURITY_ENGINEER', 'PLATFORM_ENGINEER', 'SUPPORT', 'NONE'] as const).map((role) => ({ ...operation, role, allowed: (operation.roles as string[]).includes(role) })),
);

describe('admin role checks', () => {
  it.each(cases)('$name as $role: allowed $allowed', async ({ query, role, allowed }) => {
    const response = await gateway.graphql(query, { token: tokens.get(role)?.accessToken });
    const codes = (response.body.errors ?? []).map((error) => error.extensions?.code);

    if (allowed) expect(codes).not.toContain('INSUFFICIENT_SCOPE');
    else expect(codes).toEqual(['INSUFFICIENT_SCOPE']);
  });

  it('refuses anonymous admin calls', async () => {
    expect(errorCode(await gateway.graphql('{ adminVerifyAudit { ok } }'))).toBe('UNAUTHENTICATED');
  });

  it('applies the CRITICAL tier to operators', async () => {
    // The default CRITICAL tier needs a DPoP-bound token on an attested device after a recent aal2 sign-in.
    const response = await strict.graphql('{ adminVerifyAudit { ok } }', { token: tokens.get('SECURITY_ENGINEER')?.accessToken });

    expect(response.body.data?.adminVerifyAudit).toBeNull();
    expect(['DPOP_PROOF_INVALID', 'DEVICE_TRUST_REQUIRED', 'STEP_UP_REQUIRED']).toContain(errorCode(response));
  });
});

describe('admin operations', () => {
  it('lets support revoke one session of a user', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(`mutation($id: ID!) { adminRevokeSession(id: $id, reason: "customer asked") }`, { token: tokens.get('SUPPORT')?.accessToken, variables: { id: user.sessionId } });

    expect(response.body.data?.adminRevokeSession).toBe(1);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: user.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('lists a user sessions for support', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(`query($id: ID!) { adminUserSessions(userId: $id) { id userId revokedAt } }`, { token: tokens.get('SUPPORT')?.accessToken, variables: { id: user.userId } });

    expect(response.body.data?.adminUserSessions).toEqual([{ id: user.sessionId, userId: user.userId, revokedAt: null }]);
  });

  it('suspends and restores a device', async () => {
    const user = await signUp(gateway);
    const devices = await gateway.graphql(`query($id: ID!) { adminUserDevices(userId: $id) { id } }`, { token: tokens.get('SUPPORT')?.accessToken, variables: { id: user.userId } });
    const deviceId = (devices.body.data?.adminUserDevices as Array<{ id: string }>)[0]?.id;
    const security = tokens.get('SECURITY_ENGINEER')?.accessToken;
    const suspended = await gateway.graphql(`mutation($id: ID!) { adminSuspendDevice(id: $id, reason: "lost phone") }`, { token: security, variables: { id: deviceId } });
    const refused = await gateway.graphql('{ me { id } }', { token: user.accessToken });
    const restored = await gateway.graphql(`mutation($id: ID!) { adminRestoreDevice(id: $id, reason: "found it") }`, { token: security, variables: { id: deviceId } });

    expect(suspended.body.data?.adminSuspendDevice).toBe(1);
    expect(errorCode(refused)).toBe('TOKEN_REVOKED');
    expect(restored.body.data?.adminRestoreDevice).toBe(true);
  });

  it('counts a bulk revocation on a dry run', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(`mutation($id: ID!) { adminRevokeSessions(criteria: { userIds: [$id] }, reason: "test") { dryRun matched job { id } } }`, {
      token: tokens.get('SECURITY_ENGINEER')?.accessToken,
      variables: { id: user.userId },
    });

    expect(response.body.data?.adminRevokeSessions).toEqual({ dryRun: true, matched: 1, job: null });
  });

  it('rejects bulk criteria that are empty', async () => {
    const response = await gateway.graphql(`mutation { adminRevokeSessions(criteria: {}, reason: "test") { matched } }`, { token: tokens.get('SECURITY_ENGINEER')?.accessToken });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
  });

  it('rejects an invalid app version range', async () => {
    const response = await gateway.graphql(`mutation { adminRevokeSessions(criteria: { appVersion: "not a range" }, reason: "test") { matched } }`, { token: tokens.get('SECURITY_ENGINEER')?.accessToken });

    expect(response.body.errors?.[0]?.extensions?.field).toBe('criteria.appVersion');
  });

  it('pages audit events by user', async () => {
    const user = await signUp(gateway);
    const token = tokens.get('SECURITY_ENGINEER')?.accessToken;
    const query = `query($id: ID!, $after: String) { adminAuditEvents(filter: { userId: $id }, first: 1, after: $after) { events { seq type userId } endCursor hasNextPage } }`;
    const first = await gateway.graphql(query, { token, variables: { id: user.userId } });
    const page = first.body.data?.adminAuditEvents as { events: Array<{ seq: string; userId: string }>; endCursor: string; hasNextPage: boolean };
    const second = await gateway.graphql(query, { token, variables: { id: user.userId, after: page.endCursor } });
    const next = second.body.data?.adminAuditEvents as { events: Array<{ seq: string; userId: string }> };

    expect(page.hasNextPage).toBe(true);
    expect(page.events[0]?.userId).toBe(user.userId);
    expect(BigInt(next.events[0]?.seq as string)).toBeLessThan(BigInt(page.events[0]?.seq as string));
  });

  it('verifies the audit chain', async () => {
    const response = await gateway.graphql('{ adminVerifyAudit { ok firstBrokenSeq } }', { token: tokens.get('SECURITY_ENGINEER')?.accessToken });

    expect(response.body.data?.adminVerifyAudit).toEqual({ ok: true, firstBrokenSeq: null });
  });

  it('records the operator as actor', async () => {
    const user = await signUp(gateway);
    const operator = tokens.get('SECURITY_ENGINEER') as SignedIn;
    await gateway.graphql(`mutation($id: ID!) { adminRevokeUser(userId: $id, reason: "account takeover") }`, { token: operator.accessToken, variables: { id: user.userId } });
    const events = await gateway.tollgate.services.database.prisma.auditEvent.findMany({ where: { userId: user.userId, type: 'user.revoked' } });

    expect(events.map((event) => event.actor)).toEqual([`operator:${operator.userId}`]);
  });
});
