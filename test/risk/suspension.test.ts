import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { totpCode } from '../../src/accounts/totp.ts';
import type { ManualClock } from '../../src/clock.ts';
import { createDeviceKey, dpopGraphql, signProof, type DeviceKey } from '../helpers/dpop.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { codeOf, loginAt, newCredentials, post, refreshAt, signUpAt } from './support.ts';

let gateway: TestGateway;
let clock: ManualClock;

beforeAll(async () => {
  gateway = await startTestGateway();
  clock = gateway.clock as ManualClock;
});

afterAll(async () => {
  await gateway?.close();
});

async function deviceOf(sessionId: string): Promise<string> {
  const [row] = await sql<{ device_id: string }>(gateway, 'SELECT device_id FROM sessions WHERE id = $1', [sessionId]);
  return row!.device_id;
}

async function suspendedAt(deviceId: string): Promise<Date | null> {
  const [row] = await sql<{ suspended_at: Date | null }>(gateway, 'SELECT suspended_at FROM devices WHERE id = $1', [deviceId]);
  return row!.suspended_at;
}

async function enrolTotp(key: DeviceKey, accessToken: string): Promise<string> {
  const enrolled = await dpopGraphql(gateway, key, accessToken, 'mutation { enrollTotp { secret } }');
  const secret = (enrolled.body.data?.enrollTotp as { secret: string } | undefined)?.secret;
  if (!secret) throw new Error(`enrollTotp failed: ${JSON.stringify(enrolled.body.errors)}`);
  const confirmed = await dpopGraphql(gateway, key, accessToken, 'mutation($code: String!) { confirmTotp(code: $code) }', { variables: { code: totpCode(secret, clock.now()) } });
  if (confirmed.body.data?.confirmTotp !== true) throw new Error(`confirmTotp failed: ${JSON.stringify(confirmed.body.errors)}`);
  return secret;
}

const completeLoginMutation = `mutation($input: CompleteLoginInput!) {
  completeLogin(input: $input) { __typename ... on AuthSuccess { tokens { refreshToken } } }
}`;

describe('suspended device', () => {
  it('is refused at login and refresh until an operator restores it', async () => {
    const key = await createDeviceKey();
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.90', key);
    const deviceId = await deviceOf(user.sessionId);
    await gateway.tollgate.services.risk.suspendDevice(deviceId, 'reported_stolen');

    const login = await loginAt(gateway, credentials, '192.0.2.90', key);
    expect(login.status).toBe(403);
    expect(codeOf(login)).toBe('DEVICE_SUSPENDED');
    expect(login.body.errors?.[0]?.extensions?.challengeId).toBeUndefined();
    const refresh = await refreshAt(gateway, user.refreshToken, '192.0.2.90', key);
    expect(refresh.status).toBe(403);
    expect(codeOf(refresh)).toBe('DEVICE_SUSPENDED');

    expect(await gateway.tollgate.services.risk.restoreDevice(deviceId, { actor: 'support@example.com' })).toBe(true);
    expect(await suspendedAt(deviceId)).toBeNull();
    expect((await refreshAt(gateway, user.refreshToken, '192.0.2.90', key)).status).toBe(200);
    expect((await loginAt(gateway, credentials, '192.0.2.90', key)).status).toBe(200);
    const [audit] = await sql<{ reason: string }>(gateway, `SELECT reason FROM audit_events WHERE type = 'device.restored' AND device_id = $1`, [deviceId]);
    expect(audit?.reason).toBe('operator');
  });

  it('is restored by a second factor through completeLogin', async () => {
    const key = await createDeviceKey();
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.91', key);
    const deviceId = await deviceOf(user.sessionId);
    const secret = await enrolTotp(key, user.accessToken);
    await gateway.tollgate.services.risk.suspendDevice(deviceId, 'refresh_burst');
    clock.advance(30);

    const login = await loginAt(gateway, credentials, '192.0.2.91', key);
    expect(codeOf(login)).toBe('DEVICE_SUSPENDED');
    const challengeId = login.body.errors?.[0]?.extensions?.challengeId as string;
    expect(challengeId).toEqual(expect.any(String));
    expect(login.body.errors?.[0]?.extensions?.methods).toEqual(['TOTP']);
    expect(await suspendedAt(deviceId)).not.toBeNull();

    const completed = await post(gateway, completeLoginMutation, {
      variables: { input: { challengeId, method: 'TOTP', code: totpCode(secret, clock.now()) } },
      remoteAddress: '192.0.2.91',
      headers: { dpop: await signProof(gateway, key) },
    });
    expect((completed.body.data?.completeLogin as { __typename: string } | undefined)?.__typename).toBe('AuthSuccess');
    expect(await suspendedAt(deviceId)).toBeNull();
    const refreshToken = (completed.body.data?.completeLogin as { tokens: { refreshToken: string } }).tokens.refreshToken;
    expect((await refreshAt(gateway, refreshToken, '192.0.2.91', key)).status).toBe(200);
  });
});
