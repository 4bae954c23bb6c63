import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { defaultDevice, loginMutation, refresh, signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ env: { LOG_LEVEL: 'trace' } });
});

afterAll(async () => {
  await gateway?.close();
});

describe('log secrecy', () => {
  it('writes no token or password used in a full journey to the log', async () => {
    const user = await signUp(gateway);
    const secrets = [user.password, user.accessToken, user.refreshToken];

    const rotated = (await refresh(gateway, user.refreshToken)).body.data?.refreshSession as { accessToken: string; refreshToken: string };
    secrets.push(rotated.accessToken, rotated.refreshToken);
    await refresh(gateway, user.refreshToken);
    await gateway.graphql(loginMutation, { variables: { input: { email: user.email, password: 'wrong password value', device: defaultDevice } } });
    secrets.push('wrong password value');
    await gateway.graphql('{ me { id email } }', { token: rotated.accessToken });
    await gateway.graphql('{ me { id } }', { headers: { authorization: `Bearer ${rotated.accessToken}x` } });
    await gateway.graphql('mutation { logout }', { token: rotated.accessToken });
    await gateway.graphql('{ me { id } }', { token: rotated.accessToken });
    (gateway.clock as ManualClock).advance(60);
    await refresh(gateway, user.refreshToken);

    const log = gateway.logs.text();
    expect(gateway.logs.lines.length).toBeGreaterThan(5);
    for (const secret of secrets) {
      expect(log.includes(secret), `log contains a secret of length ${secret.length}`).toBe(false);
      // A signature alone would let someone recognise the token; check the last segment too.
      const signature = secret.split('.').at(-1) as string;
      expect(log.includes(signature)).toBe(false);
    }
  });

  it('redacts credentials that reach a log line by accident', () => {
    gateway.tollgate.services.logger.info({ headers: { authorization: 'Bearer leaked-token-value' }, input: { password: 'leaked-password' } }, 'accidental');
    const log = gateway.logs.text();

    expect(log).not.toContain('leaked-token-value');
    expect(log).not.toContain('leaked-password');
    expect(log).toContain('[redacted]');
  });
});
