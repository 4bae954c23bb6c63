import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { refresh, signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  // The shipped burst threshold and refresh limit, not the harness's relaxed ones.
  gateway = await startTestGateway({ env: { TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: '10', TOLLGATE_RATE_LIMIT_REFRESH_DEVICE: '30/300' } });
});

afterAll(async () => {
  await gateway?.close();
});

describe('refresh burst signal', () => {
  it('counts concurrent retries of one token once', async () => {
    const user = await signUp(gateway);
    const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(gateway, user.refreshToken)));
    const codes = responses.map((response) => response.body.errors?.[0]?.extensions?.code ?? 'OK');

    expect(codes.filter((code) => code === 'DEVICE_SUSPENDED')).toEqual([]);
    expect(new Set(responses.map((response) => (response.body.data?.refreshSession as { refreshToken: string }).refreshToken)).size).toBe(1);
  });

  it('still fires on many distinct rotations from one device', async () => {
    const user = await signUp(gateway);
    let token = user.refreshToken;
    let last = await refresh(gateway, token);
    for (let i = 0; i < 12 && last.body.data?.refreshSession; i += 1) {
      token = (last.body.data.refreshSession as { refreshToken: string }).refreshToken;
      last = await refresh(gateway, token);
    }

    expect(last.body.errors?.[0]?.extensions?.code).toBe('DEVICE_SUSPENDED');
  });
});
