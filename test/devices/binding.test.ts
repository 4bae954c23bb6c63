import { randomUUID } from 'node:crypto';

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultDevice, errorCode, signUp, signUpMutation } from '../helpers/flows.ts';
import { createDeviceKey, dpopGraphql, loginWithKey, reasonOf, signProof, signUpWithKey } from '../helpers/dpop.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

interface DeviceRow {
  id: string;
  jkt: string | null;
  key_bound_at: Date | null;
  trust: string;
}

async function deviceRow(deviceId: string): Promise<DeviceRow | undefined> {
  const rows = await sql<DeviceRow>(gateway, 'SELECT id, jkt, key_bound_at, trust FROM devices WHERE id = $1', [deviceId]);
  return rows[0];
}

function signUpVariables(publicKey: unknown) {
  return { input: { email: `user-${randomUUID()}@example.com`, password: `pw-${randomUUID()}`, device: { ...defaultDevice, publicKey } } };
}

describe('device key binding at sign-in', () => {
  it('binds the key proven at sign-up', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(gateway, key);
    const device = await deviceRow(user.deviceId);

    expect(user.tokenType).toBe('DPoP');
    expect(decodeJwt(user.accessToken).cnf).toEqual({ jkt: key.jkt });
    expect(device?.jkt).toBe(key.jkt);
    expect(device?.key_bound_at).not.toBeNull();
    expect(device?.trust).toBe('BASIC');
  });

  it('rejects a key without a proof', async () => {
    const key = await createDeviceKey();
    const variables = signUpVariables(key.publicJwk);
    const response = await gateway.graphql(signUpMutation, { variables });
    const users = await sql(gateway, 'SELECT id FROM users WHERE email = $1', [variables.input.email]);

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('DPOP_PROOF_INVALID');
    expect(reasonOf(response)).toBe('missing');
    expect(response.headers['www-authenticate']).toContain('DPoP realm="tollgate"');
    expect(users).toHaveLength(0);
  });

  it('rejects a proof from another key', async () => {
    const key = await createDeviceKey();
    const other = await createDeviceKey();
    const response = await gateway.graphql(signUpMutation, { variables: signUpVariables(key.publicJwk), headers: { dpop: await signProof(gateway, other) } });

    expect(reasonOf(response)).toBe('key_mismatch');
  });

  it('rejects a sign-up proof for another URL', async () => {
    const key = await createDeviceKey();
    const response = await gateway.graphql(signUpMutation, {
      variables: signUpVariables(key.publicJwk),
      headers: { dpop: await signProof(gateway, key, { htu: 'https://attacker.example/graphql' }) },
    });

    expect(reasonOf(response)).toBe('htu_mismatch');
  });

  it('rejects a key with private members', async () => {
    const key = await createDeviceKey();
    const response = await gateway.graphql(signUpMutation, { variables: signUpVariables({ ...key.publicJwk, d: key.publicJwk.x }), headers: { dpop: await signProof(gateway, key) } });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
  });

  it('logs in again on the bound device', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(gateway, key);
    const again = await loginWithKey(gateway, key, user.email, user.password);

    expect(again.deviceId).toBe(user.deviceId);
    expect(again.tokenType).toBe('DPoP');
  });

  it('keeps a key-less device on bearer tokens', async () => {
    const user = await signUp(gateway);

    expect(decodeJwt(user.accessToken).cnf).toBeUndefined();
  });

  it('lists the bound device with trust details', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(gateway, key);
    const response = await dpopGraphql(gateway, key, user.accessToken, '{ myDevices { id current keyBound trust suspended integritySignals attestedAt trustedAt } }');

    expect(response.body.data?.myDevices).toEqual([
      { id: user.deviceId, current: true, keyBound: true, trust: 'BASIC', suspended: false, integritySignals: [], attestedAt: null, trustedAt: null },
    ]);
  });

  it('serves MEDIUM fields to a bound device', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(gateway, key);
    const response = await dpopGraphql(gateway, key, user.accessToken, '{ catalog(first: 1) { stock } }');

    expect(response.body.errors).toBeUndefined();
  });

  it('rejects MEDIUM fields for bearer tokens', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql('{ catalog(first: 1) { stock } }', { token: user.accessToken });

    expect(errorCode(response)).toBe('DEVICE_TRUST_REQUIRED');
    expect(response.body.errors?.[0]?.extensions?.currentTrust).toBe('UNKNOWN');
  });
});
