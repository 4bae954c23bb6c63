import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ env: { TOLLGATE_RATE_LIMIT_STEP_UP_SESSION: '2/600' } });
});

afterAll(async () => {
  await gateway?.close();
});

const stepUp = 'mutation($input: StepUpInput!) { stepUp(input: $input) { accessToken } }';

describe('step-up attempt limit', () => {
  it('follows the configured points and window', async () => {
    const user = await signUp(gateway);
    const attempt = () => gateway.graphql(stepUp, { token: user.accessToken, variables: { input: { method: 'PASSWORD', code: 'not the password' } } });

    expect((await attempt()).body.errors?.[0]?.extensions?.code).toBe('INVALID_CREDENTIALS');
    expect((await attempt()).body.errors?.[0]?.extensions?.code).toBe('INVALID_CREDENTIALS');
    const limited = await attempt();
    expect(limited.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(limited.body.errors?.[0]?.extensions?.retryAfterSeconds).toBe(600);
  });

  it('rejects a malformed setting at start-up', async () => {
    await expect(startTestGateway({ env: { TOLLGATE_RATE_LIMIT_STEP_UP_SESSION: 'five per minute' } })).rejects.toThrow(/TOLLGATE_RATE_LIMIT_STEP_UP_SESSION/);
  });
});
