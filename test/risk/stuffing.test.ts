import { randomInt } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { codeOf, loginAt, newCredentials, signUpAt } from './support.ts';

/** The shipped defaults, in place of the relaxed ones the harness sets for other suites. */
const defaults = {
  TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT: '10/900',
  TOLLGATE_RATE_LIMIT_LOGIN_IP: '50/900',
  TOLLGATE_RATE_LIMIT_SIGNUP_IP: '10/3600',
  TOLLGATE_RISK_FAILED_LOGIN_IP_THRESHOLD: '20',
  TOLLGATE_RISK_FAILED_LOGIN_PREFIX_THRESHOLD: '40',
  TOLLGATE_RISK_FANOUT_IP_THRESHOLD: '10',
  TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD: '3',
};

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ env: defaults });
});

afterAll(async () => {
  await gateway?.close();
});

const hex = () => randomInt(0, 0xffff).toString(16);

/** Tries `count` sign-ins and returns the error code of each. */
async function attempts(count: number, attempt: (index: number) => Promise<{ body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }>): Promise<unknown[]> {
  const codes: unknown[] = [];
  for (let index = 0; index < count; index += 1) codes.push(codeOf((await attempt(index)) as never));
  return codes;
}

describe('credential stuffing', () => {
  it('stops 50 accounts tried from one IP after the tenth', async () => {
    const codes = await attempts(50, () => loginAt(gateway, newCredentials(), '203.0.113.66'));

    expect(codes.slice(0, 9)).toEqual(Array(9).fill('INVALID_CREDENTIALS'));
    expect(codes.slice(9)).toEqual(Array(41).fill('RISK_DENIED'));
    // The IP's 50 attempts per window are spent: the 51st is not even scored.
    expect(codeOf(await loginAt(gateway, newCredentials(), '203.0.113.66'))).toBe('RATE_LIMITED');
  });

  it('denies a right password from the stuffing IP', async () => {
    const credentials = newCredentials();
    await signUpAt(gateway, credentials, '192.0.2.80');
    await attempts(12, () => loginAt(gateway, newCredentials(), '203.0.113.67'));
    const response = await loginAt(gateway, credentials, '203.0.113.67');

    expect(codeOf(response)).toBe('RISK_DENIED');
    expect(response.body.errors?.[0]?.extensions?.reasons).toContain('account_fanout_ip');
  });

  it('locks one account tried from 50 IPs after ten attempts', async () => {
    const credentials = newCredentials();
    await signUpAt(gateway, credentials, '192.0.2.81');
    const codes = await attempts(50, (index) => loginAt(gateway, { ...credentials, password: `guess ${index}` }, `198.51.100.${index + 1}`));

    expect(codes.slice(0, 10)).toEqual(Array(10).fill('INVALID_CREDENTIALS'));
    expect(codes.slice(10)).toEqual(Array(40).fill('RATE_LIMITED'));
  });

  it('answers a limited sign-in with 429 and Retry-After', async () => {
    const credentials = newCredentials();
    await attempts(10, (index) => loginAt(gateway, { ...credentials, password: `guess ${index}` }, `198.51.100.${index + 100}`));
    const response = await loginAt(gateway, credentials, '198.51.100.200');

    expect(response.status).toBe(429);
    const retryAfter = response.body.errors?.[0]?.extensions?.retryAfterSeconds as number;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(response.headers['retry-after']).toBe(String(retryAfter));
  });

  it('counts IPv6 addresses rotated within one /64 as one client', async () => {
    const codes = await attempts(60, () => loginAt(gateway, newCredentials(), `2001:db8:77:1:${hex()}:${hex()}:${hex()}:${hex()}`));

    expect(codes.slice(0, 9)).toEqual(Array(9).fill('INVALID_CREDENTIALS'));
    expect(codes.slice(9).some((code) => code === 'INVALID_CREDENTIALS')).toBe(false);
    expect(codes[59]).toBe('RATE_LIMITED');
  });

  it('keys on the socket address when X-Forwarded-For is random', async () => {
    const codes = await attempts(20, () =>
      loginAt(gateway, newCredentials(), '203.0.113.68', undefined, { 'x-forwarded-for': `${randomInt(1, 223)}.${randomInt(0, 255)}.${randomInt(0, 255)}.${randomInt(1, 254)}` }),
    );

    expect(codes.slice(0, 9)).toEqual(Array(9).fill('INVALID_CREDENTIALS'));
    expect(codes.slice(9)).toEqual(Array(11).fill('RISK_DENIED'));
  });

  it('limits sign-ups per IP', async () => {
    const codes: unknown[] = [];
    for (let index = 0; index < 11; index += 1) {
      const credentials = newCredentials();
      codes.push(await signUpAt(gateway, credentials, '203.0.113.69').then(() => 'OK', (error: Error) => (/RATE_LIMITED/.test(error.message) ? 'RATE_LIMITED' : error.message)));
    }

    expect(codes.slice(0, 10)).toEqual(Array(10).fill('OK'));
    expect(codes[10]).toBe('RATE_LIMITED');
  });
});
