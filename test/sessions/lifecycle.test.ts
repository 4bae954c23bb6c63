import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, login, refresh, signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

describe('session lifecycle', () => {
  it('signs up and reads me with the access token', async () => {
    const user = await signUp(gateway, { email: '  Alice@Example.COM ' });
    const response = await gateway.graphql('{ me { id email } }', { token: user.accessToken });

    expect(response.status).toBe(200);
    expect(response.body.data?.me).toEqual({ id: user.userId, email: 'alice@example.com' });
  });

  it('rejects a second sign-up with the same normalised email', async () => {
    await signUp(gateway, { email: 'bob@example.com' });
    const response = await gateway.graphql('mutation($input: SignUpInput!) { signUp(input: $input) { __typename } }', {
      variables: { input: { email: 'BOB@example.com', password: 'another long password', device: { platform: 'ANDROID' } } },
    });

    expect(response.status).toBe(400);
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('email');
  });

  it('rejects a short password with the field named', async () => {
    const response = await gateway.graphql('mutation($input: SignUpInput!) { signUp(input: $input) { __typename } }', {
      variables: { input: { email: 'short@example.com', password: 'short', device: { platform: 'ANDROID' } } },
    });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('input.password');
  });

  it('logs in and lists both sessions with the current one marked', async () => {
    const first = await signUp(gateway);
    const second = await login(gateway, first.email, first.password);
    const response = await gateway.graphql('{ mySessions { id current device { platform model hasKey } } }', { token: second.accessToken });
    const sessions = response.body.data?.mySessions as Array<{ id: string; current: boolean; device: { platform: string } }>;

    expect(sessions.map((session) => session.id).sort()).toEqual([first.sessionId, second.sessionId].sort());
    expect(sessions.find((session) => session.current)?.id).toBe(second.sessionId);
    expect(sessions[0]?.device.platform).toBe('IOS');
  });

  it('refreshes into a new pair that keeps working', async () => {
    const user = await signUp(gateway);
    const response = await refresh(gateway, user.refreshToken);
    const pair = response.body.data?.refreshSession as { accessToken: string; refreshToken: string; tokenType: string };

    expect(pair.refreshToken).not.toBe(user.refreshToken);
    expect(pair.tokenType).toBe('Bearer');
    const me = await gateway.graphql('{ me { id } }', { token: pair.accessToken });
    expect(me.body.data?.me).toEqual({ id: user.userId });
  });

  it('logout revokes the access token and the refresh token', async () => {
    const user = await signUp(gateway);
    const logout = await gateway.graphql('mutation { logout }', { token: user.accessToken });
    expect(logout.body.data?.logout).toBe(true);

    const me = await gateway.graphql('{ me { id } }', { token: user.accessToken });
    expect(me.status).toBe(401);
    expect(errorCode(me)).toBe('TOKEN_REVOKED');

    const refreshed = await refresh(gateway, user.refreshToken);
    expect(errorCode(refreshed)).toBe('SESSION_REVOKED');
    expect(refreshed.status).toBe(401);
  });

  it('revokeSession ends another session of the same user only', async () => {
    const first = await signUp(gateway);
    const second = await login(gateway, first.email, first.password);
    const stranger = await signUp(gateway);

    const foreign = await gateway.graphql('mutation($id: ID!) { revokeSession(id: $id) }', { token: second.accessToken, variables: { id: stranger.sessionId } });
    expect(errorCode(foreign)).toBe('BAD_USER_INPUT');

    const own = await gateway.graphql('mutation($id: ID!) { revokeSession(id: $id) }', { token: second.accessToken, variables: { id: first.sessionId } });
    expect(own.body.data?.revokeSession).toBe(true);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: first.accessToken }))).toBe('TOKEN_REVOKED');
    expect((await gateway.graphql('{ me { id } }', { token: stranger.accessToken })).body.data?.me).toEqual({ id: stranger.userId });
  });

  it('revokeOtherSessions keeps the current session', async () => {
    const first = await signUp(gateway);
    const second = await login(gateway, first.email, first.password);
    const third = await login(gateway, first.email, first.password);

    const response = await gateway.graphql('mutation { revokeOtherSessions }', { token: third.accessToken });
    expect(response.body.data?.revokeOtherSessions).toBe(2);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: first.accessToken }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: second.accessToken }))).toBe('TOKEN_REVOKED');
    expect((await gateway.graphql('{ me { id } }', { token: third.accessToken })).body.data?.me).toEqual({ id: first.userId });
  });

  it('answers an anonymous request for a protected field with 401 UNAUTHENTICATED', async () => {
    const response = await gateway.graphql('{ me { id } }');

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('UNAUTHENTICATED');
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tollgate"');
  });

  it('serves a public field to an anonymous request', async () => {
    const response = await gateway.graphql('{ serverInfo { version } }');

    expect(response.status).toBe(200);
    expect(response.body.data?.serverInfo).toBeTruthy();
  });

  it('returns partial results when only some root fields are refused', async () => {
    const response = await gateway.graphql('{ serverInfo { version } me { id } }');

    expect(response.status).toBe(200);
    expect(response.body.data?.me).toBeNull();
    expect(response.body.errors?.[0]?.path).toEqual(['me']);
    expect(errorCode(response)).toBe('UNAUTHENTICATED');
  });
});
