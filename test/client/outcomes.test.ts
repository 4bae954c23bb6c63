import { describe, expect, it } from 'vitest';

import { VirtualTime } from '../../sim/virtual-time.ts';
import type { ClientEvent, StepUpChallenge } from '../../src/client/index.ts';
import { refusal, ScriptedServer } from './scripted.ts';
import { createClient, graphqlRequest, graphqlUrl } from './support.ts';

const meQuery = graphqlRequest('{ me { id } }');

async function setUp(options: Parameters<typeof createClient>[2] = {}) {
  const time = new VirtualTime(Date.parse('2026-06-01T12:00:00Z'));
  const server = new ScriptedServer(time);
  const rig = createClient(time, server.fetch, { backgroundRefresh: false, ...options });
  await server.signIn(rig.storage);
  return { time, server, ...rig };
}

function signOuts(events: ClientEvent[]) {
  return events.filter((event) => event.type === 'signed_out');
}

describe('refresh outcomes', () => {
  const signOutCases = [
    ['REFRESH_TOKEN_REUSED', 'refresh_token_reused'],
    ['SESSION_REVOKED', 'session_revoked'],
    ['SESSION_EXPIRED', 'session_expired'],
    ['REFRESH_TOKEN_INVALID', 'refresh_token_invalid'],
    ['DEVICE_MISMATCH', 'device_mismatch'],
  ] as const;

  for (const [code, reason] of signOutCases) {
    it(`${code} signs out with ${reason}`, async () => {
      const { time, server, client, events, storage } = await setUp();
      server.script('TollgateRefreshSession', refusal(code, 401));

      const refreshed = await time.drive(client.refresh());

      expect(refreshed).toBe(false);
      expect(signOuts(events)).toEqual([{ type: 'signed_out', reason }]);
      expect(await storage.read('tokens')).toBeNull();
    });
  }

  it('DEVICE_SUSPENDED reports device review and keeps the tokens', async () => {
    const { time, server, client, events, storage } = await setUp();
    server.script('TollgateRefreshSession', refusal('DEVICE_SUSPENDED', 403));

    await expect(time.drive(client.refresh())).rejects.toMatchObject({ reason: 'device_suspended' });

    expect(events).toContainEqual({ type: 'device_review', reason: 'device_suspended' });
    expect(signOuts(events)).toEqual([]);
    expect((await storage.read('tokens'))?.value.refreshToken).toBe('refresh-0');
  });

  it('network failures never sign out', async () => {
    const { time, server, client, events, storage } = await setUp();
    server.script('TollgateRefreshSession', 'network-error', 'network-error', 'network-error', refusal('SERVICE_UNAVAILABLE', 503), 'network-error');

    const refreshed = await time.drive(client.refresh());

    expect(refreshed).toBe(true);
    expect(server.requests('TollgateRefreshSession')).toHaveLength(6);
    expect(signOuts(events)).toEqual([]);
    expect((await storage.read('tokens'))?.value.refreshToken).toBe('refresh-1');
  });
});

describe('request outcomes', () => {
  it('TOKEN_EXPIRED refreshes and retries once', async () => {
    const { time, server, client } = await setUp();
    server.script(undefined, refusal('TOKEN_EXPIRED', 401));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(200);
    expect(server.requests('TollgateRefreshSession')).toHaveLength(1);
    expect(server.requests(undefined).map((request) => request.authorization)).toEqual(['Bearer access-0', 'Bearer access-1']);
  });

  it('TOKEN_REVOKED ends the session with the refresh answer', async () => {
    const { time, server, client, events } = await setUp();
    server.script(undefined, refusal('TOKEN_REVOKED', 401));
    server.script('TollgateRefreshSession', refusal('SESSION_REVOKED', 401));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(401);
    expect(signOuts(events)).toEqual([{ type: 'signed_out', reason: 'session_revoked' }]);
  });

  it('STEP_UP_REQUIRED steps up and retries with the new token', async () => {
    const challenges: StepUpChallenge[] = [];
    const { time, server, client, events } = await setUp({
      onStepUp: async (challenge) => {
        challenges.push(challenge);
        return { method: 'TOTP', code: '123456' };
      },
    });
    server.script(undefined, refusal('STEP_UP_REQUIRED', 401, { acrValues: ['aal2'], maxAge: 300, reason: 'auth_too_old' }));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(200);
    expect(challenges).toEqual([{ acrValues: ['aal2'], maxAge: 300, reason: 'auth_too_old', attempt: 1, previousError: undefined }]);
    expect(server.requests('TollgateStepUp')[0]?.variables).toEqual({ input: { method: 'TOTP', code: '123456' } });
    expect(server.requests(undefined).map((request) => request.authorization)).toEqual(['Bearer access-0', 'Bearer access-1']);
    expect(events).toContainEqual({ type: 'step_up', outcome: 'completed' });
  });

  it('STEP_UP_REQUIRED asks again after a wrong code', async () => {
    const attempts: Array<string | undefined> = [];
    const { time, server, client } = await setUp({
      onStepUp: async (challenge) => {
        attempts.push(challenge.previousError);
        return { method: 'TOTP', code: '000000' };
      },
    });
    server.script(undefined, refusal('STEP_UP_REQUIRED', 401, { acrValues: ['aal2'] }));
    server.script('TollgateStepUp', refusal('INVALID_CREDENTIALS', 401));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(200);
    expect(attempts).toEqual([undefined, 'INVALID_CREDENTIALS']);
  });

  it('STEP_UP_REQUIRED returns the refusal when the user cancels', async () => {
    const { time, server, client, events } = await setUp({ onStepUp: async () => null });
    server.script(undefined, refusal('STEP_UP_REQUIRED', 401, { acrValues: ['aal2'] }));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(401);
    expect(server.requests('TollgateStepUp')).toHaveLength(0);
    expect(events).toContainEqual({ type: 'step_up', outcome: 'cancelled' });
  });

  it('DEVICE_SUSPENDED reports device review', async () => {
    const { time, server, client, events } = await setUp();
    server.script(undefined, refusal('DEVICE_SUSPENDED', 403));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(403);
    expect(events).toContainEqual({ type: 'device_review', reason: 'device_suspended' });
    expect(signOuts(events)).toEqual([]);
  });

  const passedThrough = [
    ['INSUFFICIENT_SCOPE', 403],
    ['DEVICE_TRUST_REQUIRED', 403],
    ['FORBIDDEN', 403],
    ['RISK_DENIED', 403],
    ['BAD_USER_INPUT', 400],
    ['INTERNAL_SERVER_ERROR', 500],
  ] as const;

  for (const [code, status] of passedThrough) {
    it(`${code} reaches the app unchanged`, async () => {
      const { time, server, client, events } = await setUp();
      server.script(undefined, refusal(code, status));

      const response = await time.drive(client.fetch(graphqlUrl, meQuery));
      const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };

      expect(body.errors[0]?.extensions.code).toBe(code);
      expect(server.received).toHaveLength(1);
      expect(events).toEqual([]);
    });
  }
});

describe('retries', () => {
  it('waits at least Retry-After and retryAfterSeconds', async () => {
    const { time, server, client, events } = await setUp();
    const start = time.now();
    server.script(undefined, refusal('RATE_LIMITED', 429, { retryAfterSeconds: 7 }, { 'retry-after': '7' }), refusal('SERVICE_UNAVAILABLE', 503, { retryAfterSeconds: 3 }));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));
    const times = server.requests(undefined).map((request) => request.at - start);

    expect(response.status).toBe(200);
    expect(times[1]).toBeGreaterThanOrEqual(7_000);
    expect(times[1]).toBeLessThan(7_500);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(3_000);
    expect((times[2] as number) - (times[1] as number)).toBeLessThan(4_000);
    expect(events.filter((event) => event.type === 'retry').map((event) => event.type === 'retry' && event.cause)).toEqual(['rate_limited', 'service_unavailable']);
  });

  it('reads Retry-After as an HTTP date against Date', async () => {
    const { time, server, client } = await setUp();
    const start = time.now();
    server.script(undefined, refusal('SERVICE_UNAVAILABLE', 503, {}, { 'retry-after': new Date(start + 20_000).toUTCString() }));

    await time.drive(client.fetch(graphqlUrl, meQuery));
    const retryAt = (server.requests(undefined)[1]?.at as number) - start;

    expect(retryAt).toBeGreaterThanOrEqual(20_000);
    expect(retryAt).toBeLessThan(20_500);
  });

  it('gives up after maxAttempts with the last answer', async () => {
    const { time, server, client } = await setUp({ retry: { maxAttempts: 3 } });
    server.script(undefined, refusal('SERVICE_UNAVAILABLE', 503), refusal('SERVICE_UNAVAILABLE', 503), refusal('SERVICE_UNAVAILABLE', 503));

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(503);
    expect(server.requests(undefined)).toHaveLength(3);
  });

  it('retries a query after a network failure', async () => {
    const { time, server, client } = await setUp();
    server.script(undefined, 'network-error');

    const response = await time.drive(client.fetch(graphqlUrl, meQuery));

    expect(response.status).toBe(200);
    expect(server.requests(undefined)).toHaveLength(2);
  });

  it('does not retry a mutation after a network failure', async () => {
    const { time, server, client } = await setUp();
    server.script(undefined, 'network-error');

    await expect(time.drive(client.fetch(graphqlUrl, graphqlRequest('mutation { logout }')))).rejects.toMatchObject({ reason: 'network' });
    expect(server.requests(undefined)).toHaveLength(1);
  });

  it('spreads backoff over the full jitter window', async () => {
    const waits: number[] = [];
    for (let seed = 1; seed <= 20; seed += 1) {
      const { time, server, client } = await setUp({ random: (() => { let value = seed / 21; return () => value; })() });
      const start = time.now();
      server.script(undefined, 'network-error');
      await time.drive(client.fetch(graphqlUrl, meQuery));
      waits.push((server.requests(undefined)[1]?.at as number) - start);
    }

    expect(Math.min(...waits)).toBeLessThan(100);
    expect(Math.max(...waits)).toBeGreaterThan(400);
    expect(Math.max(...waits)).toBeLessThan(500);
  });
});
