import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { epochSeconds } from '../../src/clock.ts';
import { errorCode, login, refresh, signUp, type SignedIn } from '../helpers/flows.ts';
import { sql, type TestGateway } from '../helpers/harness.ts';
import { claimsOf, codeAt, enableTotp, issueToken, manualClock, nextTotpStep, startGatewayWithoutDeviceTiers, stepUpMutation } from './support.ts';

let gateway: TestGateway;

const changeEmail = 'mutation($email: String!) { changeEmail(newEmail: $email) { email } }';

interface Pair {
  accessToken: string;
  refreshToken: string;
}

beforeAll(async () => {
  gateway = await startGatewayWithoutDeviceTiers();
});

afterAll(async () => {
  await gateway?.close();
});

async function stepUp(token: string, method: 'PASSWORD' | 'TOTP', code: string) {
  return gateway.graphql(stepUpMutation, { token, variables: { input: { method, code } } });
}

async function stepUpPair(token: string, method: 'PASSWORD' | 'TOTP', code: string): Promise<Pair> {
  const response = await stepUp(token, method, code);
  const pair = response.body.data?.stepUp as Pair | undefined;
  if (!pair) throw new Error(`stepUp failed: ${JSON.stringify(response.body.errors)}`);
  return pair;
}

async function refreshPair(token: string): Promise<Pair> {
  const response = await refresh(gateway, token);
  const pair = response.body.data?.refreshSession as Pair | undefined;
  if (!pair) throw new Error(`refresh failed: ${JSON.stringify(response.body.errors)}`);
  return pair;
}

function tryChangeEmail(token: string) {
  return gateway.graphql(changeEmail, { token, variables: { email: `stepped-${randomUUID()}@example.com` } });
}

describe('step-up end to end', () => {
  let user: SignedIn;
  let secret: string;

  beforeAll(async () => {
    user = await signUp(gateway);
    secret = await enableTotp(gateway, user);
  });

  it('opens HIGH until maxAge, then renews it', async () => {
    const clock = manualClock(gateway);

    const weak = await tryChangeEmail(user.accessToken);
    expect(weak.body.errors?.[0]?.extensions).toEqual({ code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_weak' });

    nextTotpStep(gateway);
    const steppedUpAt = epochSeconds(clock.now());
    const stepped = await stepUpPair(user.accessToken, 'TOTP', codeAt(gateway, secret));
    expect(claimsOf(stepped.accessToken)).toMatchObject({ acr: 'aal2', amr: ['pwd', 'otp'], auth_time: steppedUpAt });
    expect((await tryChangeEmail(stepped.accessToken)).body.errors).toBeUndefined();

    // The access token lives 300 s, so the app refreshes on the way to the 900 s boundary.
    clock.advance(290);
    const first = await refreshPair(stepped.refreshToken);
    clock.advance(290);
    const second = await refreshPair(first.refreshToken);
    clock.advance(290);
    const third = await refreshPair(second.refreshToken);
    expect(claimsOf(third.accessToken)).toMatchObject({ acr: 'aal2', auth_time: steppedUpAt });

    clock.set((steppedUpAt + 900) * 1000);
    expect((await tryChangeEmail(third.accessToken)).body.errors).toBeUndefined();

    clock.advance(1);
    const stale = await tryChangeEmail(third.accessToken);
    expect(stale.status).toBe(401);
    expect(stale.body.errors?.[0]?.extensions).toEqual({ code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_old' });

    const renewed = await stepUpPair(third.accessToken, 'PASSWORD', user.password);
    expect(claimsOf(renewed.accessToken)).toMatchObject({ acr: 'aal2', auth_time: epochSeconds(clock.now()) });
    expect((await tryChangeEmail(renewed.accessToken)).body.errors).toBeUndefined();
  });

  it('persists the step-up on the session row', async () => {
    const session = await signUp(gateway);
    await stepUpPair(session.accessToken, 'PASSWORD', session.password);
    const [row] = await sql<{ acr: string; amr: string[]; auth_time: Date }>(gateway, 'SELECT acr, amr, auth_time FROM sessions WHERE id = $1', [session.sessionId]);

    expect(row?.acr).toBe('aal1');
    expect(row?.amr).toEqual(['pwd']);
    expect(row?.auth_time.getTime()).toBe(gateway.clock.now().getTime());
  });
});

describe('password step-up', () => {
  it('renews auth_time and keeps acr aal1', async () => {
    const user = await signUp(gateway);
    manualClock(gateway).advance(200);
    const pair = await stepUpPair(user.accessToken, 'PASSWORD', user.password);

    expect(claimsOf(pair.accessToken)).toMatchObject({ acr: 'aal1', amr: ['pwd'], auth_time: epochSeconds(gateway.clock.now()), sid: user.sessionId });
  });

  it('rejects a wrong password and audits it', async () => {
    const user = await signUp(gateway);
    const response = await stepUp(user.accessToken, 'PASSWORD', 'not the password');
    const [failure] = await sql<{ reason: string }>(gateway, `SELECT reason FROM audit_events WHERE type = 'stepup.failed' AND session_id = $1`, [user.sessionId]);

    expect(errorCode(response)).toBe('INVALID_CREDENTIALS');
    expect(failure?.reason).toBe('wrong_password');
  });

  it('audits a success', async () => {
    const user = await signUp(gateway);
    await stepUpPair(user.accessToken, 'PASSWORD', user.password);
    const events = await sql<{ data: { method: string } }>(gateway, `SELECT data FROM audit_events WHERE type = 'stepup.succeeded' AND session_id = $1`, [user.sessionId]);

    expect(events.map((event) => event.data.method)).toEqual(['PASSWORD']);
  });

  it('needs an access token', async () => {
    const response = await gateway.graphql(stepUpMutation, { variables: { input: { method: 'PASSWORD', code: 'anything' } } });

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('UNAUTHENTICATED');
  });

  it('rate-limits attempts per session', async () => {
    const user = await signUp(gateway);
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(errorCode(await stepUp(user.accessToken, 'PASSWORD', `wrong ${attempt}`))).toBe('INVALID_CREDENTIALS');
    }

    const limited = await stepUp(user.accessToken, 'PASSWORD', user.password);
    expect(limited.status).toBe(429);
    expect(limited.body.errors?.[0]?.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: 300 });

    const otherSession = await signUp(gateway);
    expect(errorCode(await stepUp(otherSession.accessToken, 'PASSWORD', otherSession.password))).toBeUndefined();

    // The window has passed and the old access token has expired, so the app uses a new one.
    manualClock(gateway).advance(301);
    const token = await issueToken(gateway, user);
    expect(errorCode(await stepUp(token, 'PASSWORD', user.password))).toBeUndefined();
  });

  it('rejects TOTP for an account without it', async () => {
    const user = await signUp(gateway);
    const response = await stepUp(user.accessToken, 'TOTP', '123456');

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'input.method' });
  });
});

describe('step-up and refresh-token rotation', () => {
  it('makes the refresh token held before the step-up its predecessor', async () => {
    const user = await signUp(gateway);
    const stepped = await stepUpPair(user.accessToken, 'PASSWORD', user.password);

    const replay = await refreshPair(user.refreshToken);
    expect(replay).toEqual(expect.objectContaining({ refreshToken: stepped.refreshToken, accessToken: stepped.accessToken }));

    manualClock(gateway).advance(gateway.config.refreshGraceSeconds + 1);
    expect(errorCode(await refresh(gateway, user.refreshToken))).toBe('REFRESH_TOKEN_REUSED');
  });

  it('continues the family from the step-up pair', async () => {
    const user = await signUp(gateway);
    const stepped = await stepUpPair(user.accessToken, 'PASSWORD', user.password);
    const next = await refreshPair(stepped.refreshToken);

    expect(claimsOf(next.accessToken).sid).toBe(user.sessionId);
    expect(claimsOf(next.accessToken).auth_time).toBe(claimsOf(stepped.accessToken).auth_time);
  });

  it('never makes authentication fresher on refresh', async () => {
    const user = await signUp(gateway);
    const signedInAt = claimsOf(user.accessToken).auth_time;
    manualClock(gateway).advance(120);
    const next = await refreshPair(user.refreshToken);

    expect(claimsOf(next.accessToken).auth_time).toBe(signedInAt);
  });

  it('refuses a step-up on a revoked session', async () => {
    const user = await signUp(gateway);
    const sibling = await login(gateway, user.email, user.password);
    const revoked = await gateway.graphql('mutation { revokeOtherSessions }', { token: sibling.accessToken });
    expect(revoked.body.data?.revokeOtherSessions).toBe(1);

    expect(errorCode(await stepUp(user.accessToken, 'PASSWORD', user.password))).toBe('TOKEN_REVOKED');
  });
});

describe('secrets in logs', () => {
  it('never logs a password or TOTP code sent to stepUp', async () => {
    const user = await signUp(gateway);
    const secret = await enableTotp(gateway, user);
    nextTotpStep(gateway);
    const code = codeAt(gateway, secret);
    await stepUp(user.accessToken, 'TOTP', code);
    await stepUp(user.accessToken, 'PASSWORD', user.password);
    const text = gateway.logs.text();

    expect(text).not.toContain(user.password);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(`"${code}"`);
  });
});
