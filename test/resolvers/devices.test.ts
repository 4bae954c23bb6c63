import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultUserScopes } from '../../src/services.ts';
import { errorCode, signUp } from '../helpers/flows.ts';
import { createDeviceKey, dpopGraphql, loginWithKey, refreshWithProof, signUpWithKey, type DeviceKey, type KeyBoundUser } from '../helpers/dpop.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

const renameDevice = 'mutation($id: ID!, $name: String!) { renameDevice(id: $id, name: $name) { id name } }';
const removeDevice = 'mutation($id: ID!) { removeDevice(id: $id) }';
const trustDevice = 'mutation($id: ID!) { trustDevice(id: $id) { id trust trustedAt } }';

async function keyBound(): Promise<{ key: DeviceKey; user: KeyBoundUser }> {
  const key = await createDeviceKey();
  return { key, user: await signUpWithKey(gateway, key) };
}

/** Starts a second-factor session on the user's bound device, as completeLogin would. */
async function aal2Session(user: KeyBoundUser, key: DeviceKey): Promise<string> {
  const started = await gateway.tollgate.services.sessions.start(
    { userId: user.userId, deviceId: user.deviceId, scopes: defaultUserScopes, acr: 'aal2', amr: ['pwd', 'otp'], authTime: gateway.clock.now(), jkt: key.jkt },
    {},
  );
  return started.pair.accessToken;
}

async function attest(deviceId: string): Promise<void> {
  await gateway.tollgate.services.deviceTrust.recordAttestation(deviceId, {
    passed: true,
    kind: 'APP_ATTEST',
    signals: [],
    expiresAt: new Date(gateway.clock.now().getTime() + 86_400_000),
  });
}

describe('renameDevice', () => {
  it('names the device', async () => {
    const { key, user } = await keyBound();
    const response = await dpopGraphql(gateway, key, user.accessToken, renameDevice, { variables: { id: user.deviceId, name: '  Work phone ' } });

    expect(response.body.data?.renameDevice).toEqual({ id: user.deviceId, name: 'Work phone' });
  });

  it('rejects an empty name', async () => {
    const { key, user } = await keyBound();
    const response = await dpopGraphql(gateway, key, user.accessToken, renameDevice, { variables: { id: user.deviceId, name: '   ' } });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('name');
  });

  it("reports another user's device like a missing one", async () => {
    const { key, user } = await keyBound();
    const stranger = await keyBound();
    const response = await dpopGraphql(gateway, key, user.accessToken, renameDevice, { variables: { id: stranger.user.deviceId, name: 'Mine now' } });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('id');
  });
});

describe('removeDevice', () => {
  it('revokes only the device sessions', async () => {
    const phone = await createDeviceKey();
    const user = await signUpWithKey(gateway, phone);
    const tablet = await createDeviceKey();
    const other = await loginWithKey(gateway, tablet, user.email, user.password);
    const response = await dpopGraphql(gateway, tablet, other.accessToken, removeDevice, { variables: { id: user.deviceId } });

    expect(response.body.data?.removeDevice).toBe(true);
    expect(errorCode(await dpopGraphql(gateway, phone, user.accessToken, '{ me { id } }'))).toBe('TOKEN_REVOKED');
    expect(errorCode(await refreshWithProof(gateway, phone, user.refreshToken))).toBe('SESSION_REVOKED');
    expect((await dpopGraphql(gateway, tablet, other.accessToken, '{ me { id } }')).body.data?.me).toEqual({ id: user.userId });
  });

  it('drops the device from myDevices', async () => {
    const phone = await createDeviceKey();
    const user = await signUpWithKey(gateway, phone);
    const tablet = await createDeviceKey();
    const other = await loginWithKey(gateway, tablet, user.email, user.password);
    await dpopGraphql(gateway, tablet, other.accessToken, removeDevice, { variables: { id: user.deviceId } });
    const devices = await dpopGraphql(gateway, tablet, other.accessToken, '{ myDevices { id } }');
    const audit = await sql<{ type: string }>(gateway, 'SELECT type FROM audit_events WHERE device_id = $1', [user.deviceId]);

    expect(devices.body.data?.myDevices).toEqual([{ id: other.deviceId }]);
    expect(audit.map((row) => row.type)).toContain('device.removed');
  });

  it('creates a new device on sign-in', async () => {
    const { key, user } = await keyBound();
    await dpopGraphql(gateway, key, user.accessToken, removeDevice, { variables: { id: user.deviceId } });
    const again = await loginWithKey(gateway, key, user.email, user.password);

    expect(again.deviceId).not.toBe(user.deviceId);
    expect(again.tokenType).toBe('DPoP');
  });
});

describe('trustDevice', () => {
  it('asks a one-factor session to step up', async () => {
    const { key, user } = await keyBound();
    const response = await dpopGraphql(gateway, key, user.accessToken, trustDevice, { variables: { id: user.deviceId } });

    expect(errorCode(response)).toBe('STEP_UP_REQUIRED');
    expect(response.body.errors?.[0]?.extensions?.acrValues).toEqual(['aal2']);
  });

  it('rejects a device without attestation', async () => {
    const { key, user } = await keyBound();
    const token = await aal2Session(user, key);
    const response = await dpopGraphql(gateway, key, token, trustDevice, { variables: { id: user.deviceId } });

    expect(errorCode(response)).toBe('DEVICE_TRUST_REQUIRED');
    expect(response.body.errors?.[0]?.extensions?.currentTrust).toBe('BASIC');
  });

  it('confirms an attested device', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId);
    const token = await aal2Session(user, key);
    const response = await dpopGraphql(gateway, key, token, trustDevice, { variables: { id: user.deviceId } });
    const device = response.body.data?.trustDevice as { trust: string; trustedAt: string | null };

    expect(device.trustedAt).toBe(gateway.clock.now().toISOString());
    expect(device.trust).toBe('ATTESTED');
  });

  it('rejects a bearer session, which has no device trust', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(trustDevice, { token: user.accessToken, variables: { id: '00000000-0000-4000-8000-000000000000' } });

    expect(errorCode(response)).toBe('DEVICE_TRUST_REQUIRED');
  });
});
