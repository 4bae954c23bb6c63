import { describe, expect, it } from 'vitest';

import { VirtualTime } from '../../sim/virtual-time.ts';
import { MemoryTokenStorage } from '../../src/client/index.ts';
import { ScriptedServer } from './scripted.ts';
import { createClient, DyingStorage, graphqlRequest, graphqlUrl, SharedView } from './support.ts';

const meQuery = graphqlRequest('{ me { id } }');
const ttlMs = 300_000;

function setUp() {
  const time = new VirtualTime(Date.parse('2026-06-01T12:00:00Z'));
  const server = new ScriptedServer(time, ttlMs);
  return { time, server };
}

describe('single-flight refresh', () => {
  it('sends one refresh for concurrent requests', async () => {
    const { time, server } = setUp();
    const { client, storage } = createClient(time, server.fetch, { backgroundRefresh: false });
    await server.signIn(storage);
    await time.advance(ttlMs);

    const responses = await time.drive(Promise.all(Array.from({ length: 8 }, () => client.fetch(graphqlUrl, meQuery))));

    expect(server.requests('TollgateRefreshSession')).toHaveLength(1);
    expect(responses.map((response) => response.status)).toEqual(Array(8).fill(200));
  });
});

describe('two processes sharing one store', () => {
  it('send one refresh when both refresh at once', async () => {
    const { time, server } = setUp();
    const storage = new MemoryTokenStorage();
    const app = createClient(time, server.fetch, { storage, processName: 'app', backgroundRefresh: false });
    const extension = createClient(time, server.fetch, { storage, processName: 'share-extension', backgroundRefresh: false });
    await server.signIn(storage);
    await time.drive(Promise.all([app.client.start(), extension.client.start()]));

    await time.drive(Promise.all([app.client.refresh(), extension.client.refresh()]));

    expect(server.requests('TollgateRefreshSession')).toHaveLength(1);
    expect(app.events.concat(extension.events).filter((event) => event.type === 'signed_out')).toEqual([]);
  });

  it('never send one refresh token twice over a day', async () => {
    const { time, server } = setUp();
    const storage = new MemoryTokenStorage();
    const app = createClient(time, server.fetch, { storage, processName: 'app' });
    const extension = createClient(time, server.fetch, { storage, processName: 'share-extension' });
    await server.signIn(storage);
    await time.drive(Promise.all([app.client.start(), extension.client.start()]));

    for (let minute = 0; minute < 24 * 60; minute += 1) {
      await time.advance(60_000);
      await time.drive(Promise.all([app.client.fetch(graphqlUrl, meQuery), extension.client.fetch(graphqlUrl, meQuery)]));
    }
    const sentTokens = server.requests('TollgateRefreshSession').map((request) => request.variables.refreshToken);

    expect(new Set(sentTokens).size).toBe(sentTokens.length);
    expect(sentTokens.length).toBeGreaterThan((24 * 3600_000) / ttlMs);
    expect(app.events.concat(extension.events).filter((event) => event.type === 'signed_out')).toEqual([]);
    app.client.close();
    extension.client.close();
  });
});

describe('process killed during a refresh', () => {
  it('continues from the tokens written before the kill', async () => {
    const { time, server } = setUp();
    const dying = new DyingStorage();
    const first = createClient(time, server.fetch, { storage: dying, backgroundRefresh: false });
    await server.signIn(dying);
    dying.armed = 'after-write';

    void first.client.refresh();
    await time.advance(1_000);
    const relaunched = createClient(time, server.fetch, { storage: new SharedView(dying), backgroundRefresh: false });
    const response = await time.drive(relaunched.client.fetch(graphqlUrl, meQuery));

    expect(dying.dead).toBe(true);
    expect(response.status).toBe(200);
    expect(server.requests(undefined).map((request) => request.authorization)).toEqual(['Bearer access-1']);
    expect(server.requests('TollgateRefreshSession')).toHaveLength(1);
  });

  it('takes over the lease a killed launch of the same process left', async () => {
    const { time, server } = setUp();
    const dying = new DyingStorage();
    const first = createClient(time, server.fetch, { storage: dying, backgroundRefresh: false });
    await server.signIn(dying);
    dying.armed = 'after-write';
    void first.client.refresh();
    await time.advance(1_000);
    const start = time.now();

    const relaunched = createClient(time, server.fetch, { storage: new SharedView(dying), backgroundRefresh: false });
    await time.drive(relaunched.client.refresh());

    expect(time.now() - start).toBeLessThan(1_000);
    expect(server.requests('TollgateRefreshSession').map((request) => request.variables.refreshToken)).toEqual(['refresh-0', 'refresh-1']);
  });

  it('waits out the lease a killed other process left', async () => {
    const { time, server } = setUp();
    const dying = new DyingStorage();
    const extension = createClient(time, server.fetch, { storage: dying, processName: 'share-extension', backgroundRefresh: false });
    await server.signIn(dying);
    dying.armed = 'after-write';
    void extension.client.refresh();
    await time.advance(1_000);
    const start = time.now();

    const app = createClient(time, server.fetch, { storage: new SharedView(dying), processName: 'app', backgroundRefresh: false });
    await time.drive(app.client.refresh());

    expect(time.now() - start).toBeGreaterThanOrEqual(18_000);
    expect(server.requests('TollgateRefreshSession').map((request) => request.variables.refreshToken)).toEqual(['refresh-0', 'refresh-1']);
  });
});
