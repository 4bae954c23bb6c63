import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VirtualTime } from '../../sim/virtual-time.ts';
import { loadOrCreateDeviceKey, MemoryTokenStorage, overwrite, type StoredTokens } from '../../src/client/index.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { createClient, DyingStorage, graphqlRequest, graphqlUrl, injectFetch, newAccount, recordingFetch, SharedView, type SentRequest } from './support.ts';

const ttlSeconds = 300;
const graceSeconds = 10;
const hour = 3600_000;

let time: VirtualTime;
let gateway: TestGateway;
let sent: SentRequest[];

beforeAll(async () => {
  time = new VirtualTime(Date.now());
  gateway = await startTestGateway({ clock: time.gatewayClock, env: { LOG_LEVEL: 'error', TOLLGATE_REFRESH_GRACE_SECONDS: String(graceSeconds) } });
  sent = [];
});

afterAll(async () => {
  await gateway?.close();
});

function network() {
  return recordingFetch(injectFetch(gateway), time, sent);
}

function refreshesSince(index: number): SentRequest[] {
  return sent.slice(index).filter((request) => request.operationName === 'TollgateRefreshSession');
}

async function me(client: { fetch: typeof fetch }) {
  const response = await time.drive(client.fetch(graphqlUrl, graphqlRequest('{ me { id } }')));
  const body = (await response.json()) as { data?: { me?: { id: string } | null }; errors?: Array<{ extensions?: { code?: string } }> };
  return { status: response.status, id: body.data?.me?.id, code: body.errors?.[0]?.extensions?.code };
}

async function stored(storage: MemoryTokenStorage): Promise<StoredTokens> {
  const entry = await storage.read('tokens');
  if (!entry) throw new Error('no tokens in storage');
  return entry.value;
}

async function signedUp(options: Parameters<typeof createClient>[2] = {}) {
  const rig = createClient(time, network(), options);
  const result = await time.drive(rig.client.signUp(newAccount()));
  if (result.kind !== 'signed_in') throw new Error(`sign-up returned ${result.kind}`);
  return { ...rig, userId: result.userId };
}

function signOuts(events: Array<{ type: string }>) {
  return events.filter((event) => event.type === 'signed_out');
}

describe('client against the gateway', () => {
  it('binds the session to the device key', async () => {
    const { client, storage, userId } = await signedUp();
    const before = sent.length;
    const response = await me(client);

    expect((await stored(storage)).tokenType).toBe('DPoP');
    expect(response.id).toBe(userId);
    expect(sent[before]?.headers.get('authorization')).toMatch(/^DPoP /);
    expect(sent[before]?.headers.get('dpop')).toBeTruthy();
    client.close();
  });

  it('keeps a bearer session without a device key', async () => {
    const { client, storage, userId } = await signedUp({ bindDeviceKey: false });

    expect((await stored(storage)).tokenType).toBe('Bearer');
    expect((await me(client)).id).toBe(userId);
    client.close();
  });

  it('refreshes once for concurrent requests', async () => {
    const { client } = await signedUp({ backgroundRefresh: false });
    await time.advance(ttlSeconds * 1000 + 1_000);
    const before = sent.length;

    const responses = await time.drive(Promise.all(Array.from({ length: 5 }, () => client.fetch(graphqlUrl, graphqlRequest('{ me { id } }')))));

    expect(refreshesSince(before)).toHaveLength(1);
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    client.close();
  });

  for (const offsetHours of [-11, 7]) {
    it(`refreshes before expiry ${offsetHours} h off`, async () => {
      const { client, storage, events } = await signedUp({ clockOffsetMs: offsetHours * hour });
      const first = await stored(storage);
      const before = sent.length;

      await time.advance(ttlSeconds * 1000 * 0.9);
      const refreshes = refreshesSince(before);
      const firedAt = (refreshes[0] as SentRequest).at;

      expect(refreshes).toHaveLength(1);
      expect(firedAt).toBeGreaterThanOrEqual(first.receivedAt + ttlSeconds * 1000 * 0.65 - 2_000);
      expect(firedAt).toBeLessThanOrEqual(first.receivedAt + ttlSeconds * 1000 * 0.85 + 2_000);
      expect(Math.abs(client.clockOffsetMs + offsetHours * hour)).toBeLessThan(2_000);
      expect((await me(client)).status).toBe(200);
      expect(signOuts(events)).toEqual([]);
      client.close();
    });
  }

  it('shares one store between app and extension', async () => {
    const app = await signedUp({ processName: 'app', backgroundRefresh: false });
    const extension = createClient(time, network(), { storage: app.storage, processName: 'share-extension', backgroundRefresh: false });
    await time.drive(extension.client.start());
    const before = sent.length;

    await time.drive(Promise.all([app.client.refresh(), extension.client.refresh(), app.client.refresh()]));

    expect(refreshesSince(before)).toHaveLength(1);
    expect((await me(app.client)).status).toBe(200);
    expect((await me(extension.client)).status).toBe(200);
    expect(signOuts(app.events.concat(extension.events))).toEqual([]);
  });
});

describe('app killed during a refresh', () => {
  it('continues from tokens written before the kill', async () => {
    const dying = new DyingStorage();
    const { client, userId } = await signedUp({ storage: dying, backgroundRefresh: false });
    dying.armed = 'after-write';
    void client.refresh();
    await time.advance(1_000);
    const before = sent.length;

    const relaunched = createClient(time, network(), { storage: new SharedView(dying), backgroundRefresh: false });
    const response = await me(relaunched.client);

    expect(dying.dead).toBe(true);
    expect(response.id).toBe(userId);
    expect(refreshesSince(before)).toHaveLength(0);
  });

  for (const [label, relaunchAfterMs] of [['inside', 2_000], ['after', (graceSeconds + 50) * 1000]] as const) {
    it(`recovers a lost response ${label} the grace window`, async () => {
      const dying = new DyingStorage();
      const { client, userId } = await signedUp({ storage: dying, backgroundRefresh: false });
      dying.armed = 'before-write';
      void client.refresh();
      await time.advance(relaunchAfterMs);

      const relaunched = createClient(time, network(), { storage: new SharedView(dying), backgroundRefresh: false });
      const refreshed = await time.drive(relaunched.client.refresh());

      expect(dying.dead).toBe(true);
      expect(refreshed).toBe(true);
      expect((await me(relaunched.client)).id).toBe(userId);
      expect(signOuts(relaunched.events)).toEqual([]);
    });
  }
});

describe('stolen tokens', () => {
  async function attackerWith(tokens: StoredTokens) {
    const storage = new MemoryTokenStorage();
    await loadOrCreateDeviceKey(storage, globalThis.crypto);
    await overwrite(storage, 'tokens', tokens);
    return createClient(time, network(), { storage, processName: 'attacker', backgroundRefresh: false });
  }

  it('refuses a current token from another key', async () => {
    const victim = await signedUp({ backgroundRefresh: false });
    const attacker = await attackerWith(await stored(victim.storage));

    const refreshed = await time.drive(attacker.client.refresh());

    expect(refreshed).toBe(false);
    expect(signOuts(attacker.events)).toEqual([{ type: 'signed_out', reason: 'device_mismatch' }]);
    expect((await me(victim.client)).status).toBe(200);
    expect(await time.drive(victim.client.refresh())).toBe(true);
  });

  it('revokes the session when a rotated token comes back', async () => {
    const victim = await signedUp({ backgroundRefresh: false });
    const copied = await stored(victim.storage);
    await time.drive(victim.client.refresh());
    await time.advance((graceSeconds + 5) * 1000);
    const attacker = await attackerWith(copied);

    const refreshed = await time.drive(attacker.client.refresh());
    const victimResponse = await me(victim.client);

    expect(refreshed).toBe(false);
    expect(signOuts(attacker.events)).toEqual([{ type: 'signed_out', reason: 'refresh_token_reused' }]);
    expect(victimResponse.status).toBe(401);
    expect(signOuts(victim.events)).toEqual([{ type: 'signed_out', reason: 'session_revoked' }]);
  });
});

describe('session ended elsewhere', () => {
  it('signs out with session_revoked', async () => {
    const first = await signedUp({ backgroundRefresh: false });
    const account = newAccount();
    const owner = createClient(time, network(), { backgroundRefresh: false });
    await time.drive(owner.client.signUp(account));
    const second = createClient(time, network(), { backgroundRefresh: false });
    await time.drive(second.client.login(account));
    await time.drive(second.client.fetch(graphqlUrl, graphqlRequest('mutation { revokeOtherSessions }')));

    const response = await me(owner.client);

    expect(response.status).toBe(401);
    expect(signOuts(owner.events)).toEqual([{ type: 'signed_out', reason: 'session_revoked' }]);
    expect(await owner.storage.read('tokens')).toBeNull();
    expect((await me(first.client)).status).toBe(200);
  });

  it('signs out with session_expired after the idle lifetime', async () => {
    const { client, events } = await signedUp({ backgroundRefresh: false, bindDeviceKey: false });
    await time.advance(8 * 24 * hour);

    const response = await me(client);

    expect(response.status).toBe(401);
    expect(signOuts(events)).toEqual([{ type: 'signed_out', reason: 'session_expired' }]);
  });

  it('signOut clears the store and ends the session', async () => {
    const { client, storage, events } = await signedUp({ backgroundRefresh: false });
    const tokens = await stored(storage);
    await time.drive(client.signOut());
    const reused = await attackerlessRefresh(tokens);

    expect(await storage.read('tokens')).toBeNull();
    expect(signOuts(events)).toEqual([{ type: 'signed_out', reason: 'signed_out' }]);
    expect(reused).toBe('SESSION_REVOKED');
  });
});

/** Sends `refreshSession` with a raw refresh token, without the client, and returns the error code. */
async function attackerlessRefresh(tokens: StoredTokens): Promise<unknown> {
  const response = await gateway.graphql('mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken } }', { variables: { token: tokens.refreshToken } });
  return response.body.errors?.[0]?.extensions?.code;
}
