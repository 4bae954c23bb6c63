import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { defaultDevice, errorCode, loginMutation, signUp, type SignedIn } from '../helpers/flows.ts';
import { sql, type TestGateway } from '../helpers/harness.ts';
import { claimsOf, codeAt, confirmMutation, enableTotp, enrollMutation, issueToken, manualClock, nextTotpStep, startGatewayWithoutDeviceTiers, stepUpMutation } from './support.ts';

let gateway: TestGateway;

const completeLoginMutation = `mutation($input: CompleteLoginInput!) {
  completeLogin(input: $input) {
    __typename
    ... on AuthSuccess { tokens { accessToken refreshToken } session { id } user { id } }
  }
}`;

const challengeLogin = `mutation($input: LoginInput!) {
  login(input: $input) {
    __typename
    ... on StepUpChallenge { challengeId methods reasons expiresAt }
  }
}`;

interface Challenge {
  challengeId: string;
  methods: string[];
  reasons: string[];
  expiresAt: string;
}

beforeAll(async () => {
  gateway = await startGatewayWithoutDeviceTiers();
});

afterAll(async () => {
  await gateway?.close();
});

function stepUpWithCode(token: string, code: string) {
  return gateway.graphql(stepUpMutation, { token, variables: { input: { method: 'TOTP', code } } });
}

describe('TOTP enrolment', () => {
  it('returns a secret and an otpauth URI for it', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(enrollMutation, { token: user.accessToken });
    const enrollment = response.body.data?.enrollTotp as { secret: string; otpauthUri: string; expiresAt: string };

    expect(enrollment.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(enrollment.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(enrollment.secret);
    expect(uri.searchParams.get('issuer')).toBe('Tollgate');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/Tollgate:${user.email}`);
    expect(new Date(enrollment.expiresAt).getTime()).toBe(gateway.clock.now().getTime() + 600_000);
  });

  it('stores nothing on the account until confirmed', async () => {
    const user = await signUp(gateway);
    await gateway.graphql(enrollMutation, { token: user.accessToken });
    const [row] = await sql<{ totp_secret_encrypted: Buffer | null }>(gateway, 'SELECT totp_secret_encrypted FROM users WHERE id = $1', [user.userId]);

    expect(row?.totp_secret_encrypted).toBeNull();
  });

  it('seals the confirmed secret at rest', async () => {
    const user = await signUp(gateway);
    const secret = await enableTotp(gateway, user);
    const [row] = await sql<{ totp_secret_encrypted: Buffer; totp_confirmed_at: Date | null }>(gateway, 'SELECT totp_secret_encrypted, totp_confirmed_at FROM users WHERE id = $1', [user.userId]);

    expect(row?.totp_confirmed_at).not.toBeNull();
    expect(row?.totp_secret_encrypted.toString('latin1')).not.toContain(secret);
    expect(row?.totp_secret_encrypted.length).toBeGreaterThan(secret.length);
  });

  it('rejects a wrong confirmation code', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(enrollMutation, { token: user.accessToken });
    const secret = (response.body.data?.enrollTotp as { secret: string }).secret;
    const wrong = String((Number(codeAt(gateway, secret)) + 1) % 1_000_000).padStart(6, '0');

    expect(errorCode(await gateway.graphql(confirmMutation, { token: user.accessToken, variables: { code: wrong } }))).toBe('INVALID_CREDENTIALS');
  });

  it('rejects a confirmation without an enrolment', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(confirmMutation, { token: user.accessToken, variables: { code: '123456' } });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'code' });
  });

  it('needs a recent authentication for the first enrolment', async () => {
    const user = await signUp(gateway);
    const token = await issueToken(gateway, user, { ageSeconds: 901 });
    const response = await gateway.graphql(enrollMutation, { token });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'STEP_UP_REQUIRED', acrValues: [], maxAge: 900, reason: 'authentication_too_old' });
  });

  it('needs aal2 to replace a confirmed secret', async () => {
    const user = await signUp(gateway);
    await enableTotp(gateway, user);

    const weak = await gateway.graphql(enrollMutation, { token: await issueToken(gateway, user, { acr: 'aal1' }) });
    expect(weak.body.errors?.[0]?.extensions).toEqual({ code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_weak' });

    const strong = await gateway.graphql(enrollMutation, { token: await issueToken(gateway, user, { acr: 'aal2', amr: ['pwd', 'otp'] }) });
    expect(strong.body.errors).toBeUndefined();
  });
});

describe('TOTP step-up', () => {
  let user: SignedIn;
  let secret: string;

  // Each test gets its own session: attempts, right or wrong, count against the session's limit.
  beforeEach(async () => {
    user = await signUp(gateway);
    secret = await enableTotp(gateway, user);
  });

  it('accepts a code once', async () => {
    nextTotpStep(gateway);
    const code = codeAt(gateway, secret);

    expect(errorCode(await stepUpWithCode(user.accessToken, code))).toBeUndefined();
    const replay = await stepUpWithCode(user.accessToken, code);
    expect(errorCode(replay)).toBe('INVALID_CREDENTIALS');
    const [audit] = await sql<{ reason: string }>(gateway, `SELECT reason FROM audit_events WHERE type = 'stepup.failed' AND session_id = $1 ORDER BY id DESC LIMIT 1`, [user.sessionId]);
    expect(audit?.reason).toBe('code_reused');
  });

  it('rejects the previous step after a newer one was used', async () => {
    nextTotpStep(gateway);
    const earlier = codeAt(gateway, secret);
    nextTotpStep(gateway);
    expect(errorCode(await stepUpWithCode(user.accessToken, codeAt(gateway, secret)))).toBeUndefined();

    expect(errorCode(await stepUpWithCode(user.accessToken, earlier))).toBe('INVALID_CREDENTIALS');
  });

  it('accepts a code one step late for clock drift', async () => {
    nextTotpStep(gateway);
    const code = codeAt(gateway, secret);
    manualClock(gateway).advance(30);

    expect(errorCode(await stepUpWithCode(user.accessToken, code))).toBeUndefined();
  });

  it('rejects a code two steps late', async () => {
    nextTotpStep(gateway);
    const code = codeAt(gateway, secret);
    manualClock(gateway).advance(60);

    expect(errorCode(await stepUpWithCode(user.accessToken, code))).toBe('INVALID_CREDENTIALS');
  });

  it('rate-limits codes per session, confirmation included', async () => {
    for (let attempt = 0; attempt < 4; attempt++) {
      expect(errorCode(await stepUpWithCode(user.accessToken, '000000'))).toBe('INVALID_CREDENTIALS');
    }

    nextTotpStep(gateway);
    const limited = await stepUpWithCode(user.accessToken, codeAt(gateway, secret));
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe('RATE_LIMITED');
  });
});

describe('login with a second factor', () => {
  let user: SignedIn;
  let secret: string;

  beforeAll(async () => {
    user = await signUp(gateway);
    secret = await enableTotp(gateway, user);
  });

  async function challenge(device = { ...defaultDevice, model: 'Pixel 9' }): Promise<Challenge> {
    const response = await gateway.graphql(challengeLogin, { variables: { input: { email: user.email, password: user.password, device: { ...device, platform: 'ANDROID' } } } });
    const login = response.body.data?.login as (Challenge & { __typename: string }) | undefined;
    if (login?.__typename !== 'StepUpChallenge') throw new Error(`expected a challenge: ${JSON.stringify(response.body)}`);
    return login;
  }

  function complete(challengeId: string, code: string) {
    return gateway.graphql(completeLoginMutation, { variables: { input: { challengeId, method: 'TOTP', code } } });
  }

  it('answers a StepUpChallenge instead of a session', async () => {
    const answer = await challenge();

    expect(answer.methods).toEqual(['TOTP']);
    expect(answer.reasons).toEqual(['second_factor_enrolled']);
    expect(new Date(answer.expiresAt).getTime()).toBe(gateway.clock.now().getTime() + 300_000);
  });

  it('completes with a code into an aal2 session on the login device', async () => {
    const answer = await challenge();
    nextTotpStep(gateway);
    const response = await complete(answer.challengeId, codeAt(gateway, secret));
    const success = response.body.data?.completeLogin as { __typename: string; tokens: { accessToken: string }; session: { id: string }; user: { id: string } };

    expect(success.__typename).toBe('AuthSuccess');
    expect(success.user.id).toBe(user.userId);
    expect(claimsOf(success.tokens.accessToken)).toMatchObject({ acr: 'aal2', amr: ['pwd', 'otp'], auth_time: Math.floor(gateway.clock.now().getTime() / 1000) });
    const [device] = await sql<{ model: string; platform: string }>(gateway, 'SELECT d.model, d.platform FROM sessions s JOIN devices d ON d.id = s.device_id WHERE s.id = $1', [success.session.id]);
    expect(device).toEqual({ model: 'Pixel 9', platform: 'ANDROID' });
  });

  it('completes a challenge once', async () => {
    const answer = await challenge();
    nextTotpStep(gateway);
    expect(errorCode(await complete(answer.challengeId, codeAt(gateway, secret)))).toBeUndefined();

    nextTotpStep(gateway);
    const again = await complete(answer.challengeId, codeAt(gateway, secret));
    expect(errorCode(again)).toBe('INVALID_CREDENTIALS');
    expect(again.body.data).toBeNull();
  });

  it('keeps the challenge open after a wrong code', async () => {
    const answer = await challenge();
    nextTotpStep(gateway);

    expect(errorCode(await complete(answer.challengeId, '000000'))).toBe('INVALID_CREDENTIALS');
    expect(errorCode(await complete(answer.challengeId, codeAt(gateway, secret)))).toBeUndefined();
  });

  it('discards a challenge after too many wrong codes', async () => {
    const answer = await challenge();
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(errorCode(await complete(answer.challengeId, '000000'))).toBe('INVALID_CREDENTIALS');
    }
    expect(errorCode(await complete(answer.challengeId, '000000'))).toBe('RATE_LIMITED');

    nextTotpStep(gateway);
    expect(errorCode(await complete(answer.challengeId, codeAt(gateway, secret)))).toBe('INVALID_CREDENTIALS');
  });

  it('expires a challenge after its lifetime', async () => {
    const answer = await challenge();
    manualClock(gateway).advance(301);

    expect(errorCode(await complete(answer.challengeId, codeAt(gateway, secret)))).toBe('INVALID_CREDENTIALS');
  });

  it('rejects an unknown challenge id', async () => {
    expect(errorCode(await complete('00000000-0000-4000-8000-000000000000', '123456'))).toBe('INVALID_CREDENTIALS');
  });

  it('rejects PASSWORD as the method of a TOTP challenge', async () => {
    const answer = await challenge();
    const response = await gateway.graphql(completeLoginMutation, { variables: { input: { challengeId: answer.challengeId, method: 'PASSWORD', code: user.password } } });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'input.method' });
  });

  it('still answers a wrong password like any failed login', async () => {
    const response = await gateway.graphql(loginMutation, { variables: { input: { email: user.email, password: 'wrong password here', device: defaultDevice } } });

    expect(errorCode(response)).toBe('INVALID_CREDENTIALS');
  });
});
