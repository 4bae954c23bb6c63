import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { totpCode } from '../../src/accounts/totp.ts';
import type { ManualClock } from '../../src/clock.ts';
import { createDeviceKey, dpopGraphql } from '../helpers/dpop.ts';
import { testRedisUrl } from '../helpers/env.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { codeOf, loginAt, newCredentials, post, signUpAt } from './support.ts';

function policyFile(policy: unknown): string {
  const file = `${mkdtempSync(`${tmpdir()}/risk-policy-`)}/policy.json`;
  writeFileSync(file, JSON.stringify(policy));
  return file;
}

describe('risk level on the request path', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    // `me` plays the sensitive field, and only the session's level has a weight here.
    gateway = await startTestGateway({
      env: { TOLLGATE_RISK_ASSESSED_TIERS: 'LOW', TOLLGATE_RISK_POLICY_FILE: policyFile({ weights: { device_untrusted: 0, first_sensitive_use: 0 } }) },
    });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('serves a LOW session', async () => {
    const user = await signUpAt(gateway, newCredentials());
    const response = await post(gateway, '{ me { id } }', { token: user.accessToken });

    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('reads a raised session level from the mirror', async () => {
    const user = await signUpAt(gateway, newCredentials());
    await gateway.tollgate.services.risk.setSessionRisk(user.sessionId, 'HIGH');
    const response = await post(gateway, '{ me { id } }', { token: user.accessToken });

    expect(response.status).toBe(403);
    expect(codeOf(response)).toBe('RISK_DENIED');
    expect(response.body.errors?.[0]?.extensions?.reasons).toEqual(['session_risk_high']);
  });

  it('returns to LOW after a TOTP step-up', async () => {
    const key = await createDeviceKey();
    const user = await signUpAt(gateway, newCredentials(), '127.0.0.1', key);
    const clock = gateway.clock as ManualClock;
    const enrolled = await dpopGraphql(gateway, key, user.accessToken, 'mutation { enrollTotp { secret } }');
    const secret = (enrolled.body.data?.enrollTotp as { secret: string } | null)?.secret;
    if (!secret) throw new Error(`enrollTotp failed: ${JSON.stringify(enrolled.body.errors)}`);
    await dpopGraphql(gateway, key, user.accessToken, 'mutation($code: String!) { confirmTotp(code: $code) }', { variables: { code: totpCode(secret, clock.now()) } });
    await gateway.tollgate.services.risk.setSessionRisk(user.sessionId, 'HIGH');
    expect(codeOf(await dpopGraphql(gateway, key, user.accessToken, '{ me { id } }'))).toBe('RISK_DENIED');
    clock.advance(30);

    const stepUp = await dpopGraphql(gateway, key, user.accessToken, 'mutation($code: String!) { stepUp(input: { method: TOTP, code: $code }) { accessToken } }', {
      variables: { code: totpCode(secret, clock.now()) },
    });
    const accessToken = (stepUp.body.data?.stepUp as { accessToken: string } | null)?.accessToken;
    if (!accessToken) throw new Error(`stepUp failed: ${JSON.stringify(stepUp.body.errors)}`);
    const response = await dpopGraphql(gateway, key, accessToken, '{ me { id } }');

    expect(response.body.data?.me).toEqual({ id: user.userId });
    const [row] = await sql<{ risk_level: string }>(gateway, 'SELECT risk_level FROM sessions WHERE id = $1', [user.sessionId]);
    expect(row?.risk_level).toBe('LOW');
  });
});

describe('hot path', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('reads Redis once and PostgreSQL never for a LOW query', async () => {
    const user = await signUpAt(gateway, newCredentials());
    await post(gateway, '{ me { id } }', { token: user.accessToken });
    // The audit chainer links events in the background; it is stopped so only the request path counts.
    await gateway.tollgate.services.auditChainer.stop();
    await gateway.tollgate.services.auditChainer.chainAll();
    const monitor = await new Redis(testRedisUrl).monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((arg) => arg.startsWith(gateway.redisPrefix))) commands.push(args.join(' '));
    });
    const statementsBefore = gateway.tollgate.services.database.queryCount();

    const response = await post(gateway, '{ me { id } }', { token: user.accessToken });
    await new Promise((resolve) => setTimeout(resolve, 200));
    monitor.disconnect();

    expect(response.body.data?.me).toEqual({ id: user.userId });
    expect(gateway.tollgate.services.database.queryCount() - statementsBefore).toBe(0);
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatch(/^mget .*rk:s:/i);
  });
});

/** Signs up reading only the token pair, whose type is PUBLIC, so no assessed field resolves. */
async function signUpForTokens(gateway: TestGateway): Promise<{ accessToken: string; sessionId: string }> {
  const response = await post(gateway, 'mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { tokens { accessToken } } } }', {
    variables: { input: { ...newCredentials(), device: { platform: 'IOS' } } },
  });
  const accessToken = (response.body.data?.signUp as { tokens: { accessToken: string } } | undefined)?.tokens.accessToken;
  if (!accessToken) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { sid: string };
  return { accessToken, sessionId: claims.sid };
}

describe('sensitive field decisions', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway({ env: { TOLLGATE_RISK_ASSESSED_TIERS: 'LOW', TOLLGATE_RISK_POLICY_FILE: policyFile({ weights: { device_untrusted: 0 } }) } });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('asks for a step-up at the first use of a field', async () => {
    const user = await signUpForTokens(gateway);
    const response = await post(gateway, '{ me { id } serverInfo { version } }', { token: user.accessToken });

    expect(response.status).toBe(200);
    expect(response.body.data?.me).toBeNull();
    expect(codeOf(response)).toBe('STEP_UP_REQUIRED');
    expect(response.body.errors?.[0]?.extensions?.reasons).toEqual(['first_sensitive_use']);
    expect(response.body.data?.serverInfo).toEqual({ version: expect.any(String) });
  });

  it('answers a wholly refused operation with 401 and a challenge', async () => {
    const user = await signUpForTokens(gateway);
    const response = await post(gateway, '{ me { id } }', { token: user.accessToken });

    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/insufficient_user_authentication/);
  });

  it('audits each decision with its signals', async () => {
    const user = await signUpForTokens(gateway);
    await post(gateway, '{ me { id } }', { token: user.accessToken });
    const [row] = await sql<{ data: { point: string; action: string; signals: Array<{ name: string; field: string }> } }>(
      gateway,
      `SELECT data FROM audit_events WHERE type = 'risk.decision' AND session_id = $1 ORDER BY id DESC LIMIT 1`,
      [user.sessionId],
    );

    expect(row?.data.point).toBe('sensitive');
    expect(row?.data.action).toBe('step_up');
    expect(row?.data.signals).toContainEqual({ name: 'first_sensitive_use', field: 'Query.me' });
  });
});

describe('client address behind proxies', () => {
  let gateway: TestGateway;
  let clock: ManualClock;

  beforeAll(async () => {
    gateway = await startTestGateway({ env: { TOLLGATE_TRUSTED_PROXIES: '10.9.0.1', TOLLGATE_GEO_COUNTRY_HEADER: 'CF-IPCountry' } });
    clock = gateway.clock as ManualClock;
  });

  afterAll(async () => {
    await gateway?.close();
  });

  async function lastIpOf(sessionId: string): Promise<string | undefined> {
    const [row] = await sql<{ last_ip: string }>(gateway, 'SELECT last_ip FROM sessions WHERE id = $1', [sessionId]);
    return row?.last_ip;
  }

  it('believes X-Forwarded-For from a trusted proxy', async () => {
    const user = await signUpAt(gateway, newCredentials(), '10.9.0.1', undefined);
    const spoofed = await post(gateway, '{ serverInfo { version } }', { remoteAddress: '10.9.0.1', headers: { 'x-forwarded-for': '203.0.113.77' } });

    expect(spoofed.status).toBe(200);
    expect(await lastIpOf(user.sessionId)).toBe('10.9.0.1');
    const viaProxy = await signUpAtWithForwardedFor('10.9.0.1', '203.0.113.77');
    expect(await lastIpOf(viaProxy)).toBe('203.0.113.77');
  });

  it('ignores X-Forwarded-For from any other peer', async () => {
    const sessionId = await signUpAtWithForwardedFor('198.51.100.77', '203.0.113.78');

    expect(await lastIpOf(sessionId)).toBe('198.51.100.77');
  });

  it('believes country headers only from a trusted proxy', async () => {
    const credentials = newCredentials();
    await signUpAt(gateway, credentials, '198.51.100.79');
    expect((await loginAt(gateway, credentials, '10.9.0.1', undefined, { 'cf-ipcountry': 'FR', 'x-forwarded-for': '203.0.113.79' })).status).toBe(200);
    clock.advance(600);

    const untrusted = await loginAt(gateway, credentials, '198.51.100.79', undefined, { 'cf-ipcountry': 'AU' });
    expect(untrusted.status).toBe(200);
    const trusted = await loginAt(gateway, credentials, '10.9.0.1', undefined, { 'cf-ipcountry': 'AU', 'x-forwarded-for': '203.0.113.80' });
    expect(codeOf(trusted)).toBe('RISK_DENIED');
    expect(trusted.body.errors?.[0]?.extensions?.reasons).toContain('impossible_travel');
  });

  async function signUpAtWithForwardedFor(peer: string, forwardedFor: string): Promise<string> {
    const credentials = newCredentials();
    const response = await post(gateway, 'mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { session { id } } } }', {
      variables: { input: { ...credentials, device: { platform: 'IOS' } } },
      remoteAddress: peer,
      headers: { 'x-forwarded-for': forwardedFor },
    });
    return (response.body.data?.signUp as { session: { id: string } }).session.id;
  }
});

describe('state store outage', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('rejects sign-in as retryable while Redis is unreachable', async () => {
    const credentials = newCredentials();
    await signUpAt(gateway, credentials);
    gateway.tollgate.services.state.redis?.disconnect();

    const response = await loginAt(gateway, credentials);

    expect(response.status).toBe(503);
    expect(codeOf(response)).toBe('SERVICE_UNAVAILABLE');
    expect(response.headers['retry-after']).toBe('1');
  });
});
