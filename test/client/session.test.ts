import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VirtualTime } from '../../sim/virtual-time.ts';
import { MemoryTokenStorage, type StoredTokens } from '../../src/client/index.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { createClient, graphqlRequest, injectFetch, newAccount, recordingFetch, type SentRequest } from './support.ts';

const ttlSeconds = 300;
const hour = 3600_000;

let time: VirtualTime;
let gateway: TestGateway;
let sent: SentRequest[];

beforeAll(async () => {
  time = new VirtualTime(Date.now());
  gateway = await startTestGateway({ clock: time.gatewayClock, env: { LOG_LEVEL: 'error' } });
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
  const response = await client.fetch('http://127.0.0.1:4000/graphql', graphqlRequest('{ me { id } }'));
  return { status: response.status, body: (await response.json()) as { data?: { me?: { id: string } | null }; errors?: Array<{ extensions?: { code?: string } }> } };
}

async function stored(storage: MemoryTokenStorage): Promise<StoredTokens> {
  const entry = await storage.read('tokens');
  if (!entry) throw new Error('no tokens in storage');
  return entry.value;
}

describe('client session', () => {
  it('signs up and reads me', async () => {
    const { client } = createClient(time, network());
    const result = await client.signUp(newAccount());
    const response = await me(client);

    expect(result.kind).toBe('signed_in');
    expect(response.body.data?.me?.id).toBe(result.kind === 'signed_in' ? result.userId : undefined);
    client.close();
  });

  it('refreshes once for concurrent requests', async () => {
    const { client } = createClient(time, network(), { backgroundRefresh: false });
    await client.signUp(newAccount());
    await time.advance(ttlSeconds * 1000 + 1_000);
    const before = sent.length;

    const responses = await Promise.all(Array.from({ length: 5 }, () => me(client)));

    expect(refreshesSince(before)).toHaveLength(1);
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    client.close();
  });

  for (const offsetHours of [-11, 7]) {
    it(`refreshes before expiry with the clock ${offsetHours} h off`, async () => {
      const { client, storage, events } = createClient(time, network(), { clockOffsetMs: offsetHours * hour });
      await client.signUp(newAccount());
      const first = await stored(storage);
      const before = sent.length;

      await time.advance(ttlSeconds * 1000 * 0.9);

      const refreshes = refreshesSince(before);
      expect(refreshes).toHaveLength(1);
      const firedAt = (refreshes[0] as SentRequest).at;
      expect(firedAt).toBeGreaterThanOrEqual(first.receivedAt + ttlSeconds * 1000 * 0.65 - 2_000);
      expect(firedAt).toBeLessThanOrEqual(first.receivedAt + ttlSeconds * 1000 * 0.85 + 2_000);
      expect(Math.abs(client.clockOffsetMs + offsetHours * hour)).toBeLessThan(2_000);
      expect(events.filter((event) => event.type === 'signed_out')).toEqual([]);
      client.close();
    });
  }
});
