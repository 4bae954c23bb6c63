import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDeviceKey, dpopGraphql, signUpWithKey } from '../helpers/dpop.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

describe('risk suspension and device trust', () => {
  it('lowers trust on the next request and restores it', async () => {
    const key = await createDeviceKey();
    const user = await signUpWithKey(gateway, key);
    const query = '{ catalog(first: 1) { stock } }';
    expect((await dpopGraphql(gateway, key, user.accessToken, query)).body.errors).toBeUndefined();

    await gateway.tollgate.services.risk.suspendDevice(user.deviceId, 'refresh_burst');
    const suspended = await dpopGraphql(gateway, key, user.accessToken, query);
    expect(suspended.body.errors?.[0]?.extensions?.code).toBe('DEVICE_TRUST_REQUIRED');
    expect(suspended.body.errors?.[0]?.extensions?.currentTrust).toBe('UNKNOWN');

    await gateway.tollgate.services.risk.restoreDevice(user.deviceId, { actor: 'operator:test' });
    expect((await dpopGraphql(gateway, key, user.accessToken, query)).body.errors).toBeUndefined();
  });
});
