import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

describe('HTTP routes', () => {
  it('answers healthz', async () => {
    const response = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/healthz' });

    expect(response.statusCode).toBe(200);
  });

  it('answers readyz with both stores reachable', async () => {
    const response = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/readyz' });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ready: true, postgres: 'ok', redis: 'ok' });
  });

  it('serves Prometheus metrics', async () => {
    await gateway.graphql('{ me { id } }', { headers: { authorization: 'Bearer nonsense' } });
    const response = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/metrics' });

    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('tollgate_authentication_failures_total{code="TOKEN_INVALID"} 1');
    expect(response.body).toContain('tollgate_verified_token_cache_entries');
  });

  it('refuses a mutation over GET with 405', async () => {
    const response = await gateway.tollgate.gateway.app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('mutation { logout }')}`,
      headers: { 'apollo-require-preflight': 'true' },
    });

    expect(response.statusCode).toBe(405);
  });

  it('hides resolver internals behind INTERNAL_SERVER_ERROR', async () => {
    const response = await gateway.graphql('{ serverInfo { version time } }');

    expect(response.status).toBe(200);
    expect(JSON.stringify(response.body)).not.toContain('stack');
  });
});

describe('catalogue', () => {
  it('shows names to everyone and prices to no anonymous caller', async () => {
    const response = await gateway.graphql('{ catalog(first: 2) { id name price } }');

    expect(response.status).toBe(200);
    expect(response.body.data?.catalog).toEqual([
      { id: 'item-1', name: 'Catalogue item 1', price: null },
      { id: 'item-2', name: 'Catalogue item 2', price: null },
    ]);
    expect(response.body.errors?.map((error) => error.path)).toEqual([
      ['catalog', 0, 'price'],
      ['catalog', 1, 'price'],
    ]);
  });

  it('rejects a page size over the maximum', async () => {
    const response = await gateway.graphql('{ catalog(first: 1001) { id } }');

    expect(response.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('catalogue cost', () => {
  it('counts a full page of 1,000 items against the cost limit', async () => {
    // GraphQL Armor multiplies a selection's cost by its `first` argument: (2 + 1.5 × 3) × 1000.
    const response = await gateway.graphql('{ catalog(first: 1000) { id name price } }');

    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]?.message).toContain('found 6500');
  });
});
