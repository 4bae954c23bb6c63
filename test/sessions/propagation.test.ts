import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { errorCode, login, refresh, signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { waitFor } from '../helpers/redis-server.ts';

let first: TestGateway;
let second: TestGateway;

beforeAll(async () => {
  first = await startTestGateway();
  second = await startTestGateway({ shareWith: first });
});

afterAll(async () => {
  await second?.close();
  await first?.close();
});

const me = '{ me { id } }';

describe('revocation propagation', () => {
  it('refuses on one instance a session revoked on the other', async () => {
    const user = await signUp(first);
    expect((await second.graphql(me, { token: user.accessToken })).status).toBe(200);

    const started = performance.now();
    await first.graphql('mutation { logout }', { token: user.accessToken });
    const revokedAt = performance.now();
    const response = await second.graphql(me, { token: user.accessToken });
    const refusedMs = performance.now() - revokedAt;
    const inProcessMs = await waitFor(() => second.tollgate.services.revocation.revokedLocally({ sessionId: user.sessionId, deviceId: 'none', userId: 'none', issuedAt: 0 }), 2000);
    console.info(
      `revocation propagation: logout took ${(revokedAt - started).toFixed(1)} ms; the other instance's next request, sent when logout returned, was refused ${refusedMs.toFixed(1)} ms later; its in-process view had the broadcast ${(refusedMs + inProcessMs).toFixed(1)} ms after logout returned`,
    );

    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe('TOKEN_REVOKED');
  });

  it('serves a LOW query without PostgreSQL', async () => {
    const user = await signUp(first);
    await second.graphql(me, { token: user.accessToken });
    const before = second.tollgate.services.database.queryCount();
    const response = await second.graphql(me, { token: user.accessToken });

    expect(response.status).toBe(200);
    expect(second.tollgate.services.database.queryCount()).toBe(before);
  });

  it('rejects every earlier token of a revoked user', async () => {
    const user = await signUp(first);
    const other = await login(first, user.email, user.password);
    await first.tollgate.services.revocations.revokeUser(user.userId, { reason: 'test', actor: 'system' });

    expect(errorCode(await second.graphql(me, { token: user.accessToken }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await second.graphql(me, { token: other.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('rejects a token of a revoked user whose session row survived', async () => {
    const user = await signUp(first);
    // The user's "not before" time alone must reject the token, even with the session left active.
    await first.tollgate.services.database.prisma.user.update({ where: { id: user.userId }, data: { notBefore: first.clock.now() } });
    (first.clock as ManualClock).advance(1);
    await first.tollgate.services.revocation.publish({ users: [{ id: user.userId, notBefore: Math.ceil(first.clock.now().getTime() / 1000) }] });

    expect(errorCode(await second.graphql(me, { token: user.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('accepts a new sign-in after a user revocation', async () => {
    const user = await signUp(first);
    await first.tollgate.services.revocations.revokeUser(user.userId, { reason: 'test', actor: 'system' });
    (first.clock as ManualClock).advance(1);
    const again = await login(first, user.email, user.password);

    expect((await second.graphql(me, { token: again.accessToken })).status).toBe(200);
  });

  it('rejects tokens of a suspended device on the other instance', async () => {
    const user = await signUp(first);
    const [session] = await first.tollgate.services.database.prisma.session.findMany({ where: { id: user.sessionId } });
    await first.tollgate.services.revocations.suspendDevice(session?.deviceId as string, { reason: 'test', actor: 'system' });

    expect(errorCode(await second.graphql(me, { token: user.accessToken }))).toBe('TOKEN_REVOKED');
  });

  it('refuses sign-in of a suspended user until restored', async () => {
    const user = await signUp(first);
    await first.tollgate.services.revocations.revokeUser(user.userId, { reason: 'test', actor: 'system', suspend: true });
    const refused = await first.graphql('mutation($input: LoginInput!) { login(input: $input) { __typename } }', {
      variables: { input: { email: user.email, password: user.password, device: { platform: 'IOS' } } },
    });
    await first.tollgate.services.revocations.restoreUser(user.userId, { reason: 'test', actor: 'system' });
    (first.clock as ManualClock).advance(1);
    const restored = await login(first, user.email, user.password);

    expect(errorCode(refused)).toBe('FORBIDDEN');
    expect((await second.graphql(me, { token: restored.accessToken })).status).toBe(200);
  });

  it('revokes a token family by one of its refresh token ids', async () => {
    const user = await signUp(first);
    const refreshed = await refresh(first, user.refreshToken);
    const [token] = await first.tollgate.services.database.prisma.refreshToken.findMany({ where: { sessionId: user.sessionId }, orderBy: { createdAt: 'asc' }, take: 1 });
    const revoked = await second.tollgate.services.revocations.revokeTokenFamily(token?.id as string, { reason: 'reuse reported', actor: 'system' });
    const pair = refreshed.body.data?.refreshSession as { accessToken: string; refreshToken: string };

    expect(revoked.sessionIds).toEqual([user.sessionId]);
    expect(errorCode(await first.graphql(me, { token: pair.accessToken }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await refresh(first, pair.refreshToken))).toBe('SESSION_REVOKED');
  });

  it('reloads devices and users from PostgreSQL', async () => {
    const user = await signUp(first);
    const [session] = await first.tollgate.services.database.prisma.session.findMany({ where: { id: user.sessionId } });
    const third = await startTestGateway({ shareWith: first });
    try {
      await first.tollgate.services.database.prisma.device.update({ where: { id: session?.deviceId as string }, data: { suspendedAt: first.clock.now() } });
      (first.clock as ManualClock).advance(1);
      await third.tollgate.services.revocation.reload();

      expect(third.tollgate.services.revocation.revokedLocally({ sessionId: 'none', deviceId: session?.deviceId as string, userId: 'none', issuedAt: 0 })).toBe(true);
    } finally {
      await third.close();
    }
  });
});
