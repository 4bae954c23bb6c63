import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultDevice, errorCode, login, loginMutation, signUp } from '../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  // Production's argon2id memory with more iterations, so the hash outweighs the rest of a login and
  // the cost comparison below detects whether it ran.
  gateway = await startTestGateway({ env: { TOLLGATE_ARGON2_MEMORY_KIB: '19456', TOLLGATE_ARGON2_ITERATIONS: '4' } });
});

afterAll(async () => {
  await gateway?.close();
});

function attempt(email: string, password: string) {
  return gateway.graphql(loginMutation, { variables: { input: { email, password, device: defaultDevice } } });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

describe('login', () => {
  it('answers an unknown email and a wrong password identically', async () => {
    const user = await signUp(gateway);
    const unknown = await attempt('nobody@example.com', user.password);
    const wrong = await attempt(user.email, 'not the password at all');

    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(errorCode(unknown)).toBe('INVALID_CREDENTIALS');
    expect(unknown.body).toEqual(wrong.body);
    expect(unknown.headers['www-authenticate']).toEqual(wrong.headers['www-authenticate']);
  });

  it('spends the same hashing work for an unknown email', async () => {
    const user = await signUp(gateway);
    const unknownCpu: number[] = [];
    const wrongCpu: number[] = [];
    // The gateway runs in this process, so its CPU time (argon2id threads included) is the work a
    // login costs. Unlike wall time, it barely changes when another test worker loads the machine.
    const cpuOf = async (send: () => Promise<unknown>) => {
      const before = process.cpuUsage();
      await send();
      const spent = process.cpuUsage(before);
      return spent.user + spent.system;
    };
    for (let i = 0; i < 15; i += 1) {
      unknownCpu.push(await cpuOf(() => attempt(`nobody-${i}@example.com`, 'whatever password')));
      wrongCpu.push(await cpuOf(() => attempt(user.email, 'whatever password')));
    }

    // A login that skipped argon2id for unknown accounts would cost several times less.
    const ratio = median(unknownCpu) / median(wrongCpu);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });

  it('normalises the email at login', async () => {
    const user = await signUp(gateway, { email: 'mixed.case@example.com' });
    const signedIn = await login(gateway, '  MIXED.Case@EXAMPLE.com', user.password);

    expect(signedIn.userId).toBe(user.userId);
  });

  it('audits failed logins without the password', async () => {
    const user = await signUp(gateway);
    await attempt(user.email, 'a wrong password 123');
    const rows = await sql<{ reason: string; data: unknown }>(gateway, "SELECT reason, data FROM audit_events WHERE type = 'login.failed' AND user_id = $1", [user.userId]);

    expect(rows[0]?.reason).toBe('wrong_password');
    expect(JSON.stringify(rows)).not.toContain('a wrong password 123');
  });

  it('records the device with the session', async () => {
    const user = await signUp(gateway);
    const rows = await sql<{ platform: string; model: string; os_version: string; app_version: string }>(
      gateway,
      'SELECT d.platform, d.model, d.os_version, d.app_version FROM sessions s JOIN devices d ON d.id = s.device_id WHERE s.id = $1',
      [user.sessionId],
    );

    expect(rows[0]).toEqual({ platform: defaultDevice.platform, model: defaultDevice.model, os_version: defaultDevice.osVersion, app_version: defaultDevice.appVersion });
  });

  it('rejects a device key that is not a P-256 public key', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(loginMutation, {
      variables: { input: { email: user.email, password: user.password, device: { ...defaultDevice, publicKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'B'.repeat(43) } } } },
    });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
  });
});
