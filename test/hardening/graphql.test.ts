import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { codeOf, newCredentials, post } from '../risk/support.ts';

let gateway: TestGateway;
let batching: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ env: { TOLLGATE_GRAPHQL_MAX_COST: '60' } });
  batching = await startTestGateway({
    env: { TOLLGATE_GRAPHQL_BATCHING: 'true', TOLLGATE_GRAPHQL_MAX_BATCH: '3', TOLLGATE_GRAPHQL_MAX_LIMITED_CALLS: '2', TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT: '1/900' },
  });
});

afterAll(async () => {
  await gateway?.close();
  await batching?.close();
});

const loginCall = (alias: string, email: string) =>
  `${alias}: login(input: { email: "${email}", password: "guess ${alias}", device: { platform: IOS } }) { __typename }`;
const stepUpCall = (alias: string) => `${alias}: stepUp(input: { method: PASSWORD, code: "guess ${alias}" }) { accessToken }`;

function messages(response: { body: { errors?: Array<{ message: string }> } }): string {
  return (response.body.errors ?? []).map((error) => error.message).join('\n');
}

describe('depth limit', () => {
  // The introspection types are cyclic (__Type.fields.type is a __Type), so they can nest without end.
  const deep = '{ __type(name: "User") { fields { type { fields { type { fields { type { name } } } } } } } }';

  it('rejects a cyclic deep query', async () => {
    const response = await post(gateway, deep);

    expect(response.status).toBe(400);
    expect(codeOf(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.reason).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(messages(response)).toMatch(/depth limit of 6 exceeded/);
  });

  it('rejects the same depth spread over fragments', async () => {
    const query = `{ __type(name: "User") { ...A } }
      fragment A on __Type { fields { type { ...B } } }
      fragment B on __Type { fields { type { ...C } } }
      fragment C on __Type { fields { type { name } } }`;
    const response = await post(gateway, query);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/depth limit of 6 exceeded/);
  });

  it('rejects a fragment cycle', async () => {
    const query = '{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }';
    const response = await post(gateway, query);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/Cannot spread fragment "A" within itself/);
  });

  it('accepts a query at the depth limit', async () => {
    const response = await post(gateway, '{ __type(name: "User") { fields { type { fields { type { name } } } } } }');

    expect(response.status).toBe(200);
  });
});

describe('alias, cost, token and directive limits', () => {
  it('rejects sixteen aliases', async () => {
    const aliases = Array.from({ length: 16 }, (_, index) => `a${index}: serverInfo { version }`).join(' ');
    const response = await post(gateway, `{ ${aliases} }`);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/Aliases limit of 15 exceeded/);
  });

  it('rejects a query above the cost limit', async () => {
    // Each costs 2 for the object plus 1.5 for each of its two scalars: 13 of them cost 65.
    const fields = Array.from({ length: 13 }, (_, index) => `a${index}: serverInfo { time version }`).join(' ');
    const response = await post(gateway, `{ ${fields} }`);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/Cost limit of 60 exceeded/);
  });

  it('rejects a document past the token limit', async () => {
    const response = await post(gateway, `{ serverInfo { ${'version '.repeat(1000)} } }`);

    expect(response.status).toBe(400);
    expect(codeOf(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.reason).toBe('GRAPHQL_PARSE_FAILED');
    expect(messages(response)).toMatch(/1000 tokens/);
  });

  it('rejects more than fifty directives', async () => {
    const response = await post(gateway, `{ serverInfo { version ${'@include(if: true) '.repeat(51)} } }`);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/Directives limit of 50 exceeded/);
  });
});

describe('field suggestions', () => {
  it('names no other field for a misspelt one', async () => {
    const response = await post(gateway, '{ serverInfo { versoin } }');

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/Cannot query field "versoin"/);
    expect(messages(response)).not.toMatch(/Did you mean/);
  });
});

describe('rate-limited calls per request', () => {
  it('rejects two aliased logins', async () => {
    const response = await post(gateway, `mutation { ${loginCall('a', 'x@example.com')} ${loginCall('b', 'y@example.com')} }`);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/rate-limited mutations 2 times; at most 1/);
  });

  it('rejects aliased logins hidden in a fragment', async () => {
    const query = `mutation { ...Guesses } fragment Guesses on Mutation { ${loginCall('a', 'x@example.com')} ... on Mutation { ${loginCall('b', 'x@example.com')} } }`;
    const response = await post(gateway, query);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/rate-limited mutations 2 times/);
  });

  it('rejects two aliased stepUp calls', async () => {
    const response = await post(gateway, `mutation { ${stepUpCall('a')} ${stepUpCall('b')} }`);

    expect(response.status).toBe(400);
    expect(messages(response)).toMatch(/rate-limited mutations 2 times/);
  });
});

describe('HTTP rules', () => {
  it('answers a mutation over GET with 405', async () => {
    const response = await gateway.tollgate.gateway.app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('mutation { logout }')}`,
      headers: { 'apollo-require-preflight': 'true' },
    });

    expect(response.statusCode).toBe(405);
  });

  it('serves a query over GET', async () => {
    const response = await gateway.tollgate.gateway.app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('{ serverInfo { version } }')}`,
      headers: { 'apollo-require-preflight': 'true' },
    });

    expect(response.statusCode).toBe(200);
  });

  it('rejects a GET without a preflight header', async () => {
    const response = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: `/graphql?query=${encodeURIComponent('{ serverInfo { version } }')}` });

    expect(response.statusCode).toBe(400);
  });

  it('rejects a text/plain post with 415', async () => {
    const response = await gateway.tollgate.gateway.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'text/plain', 'apollo-require-preflight': 'true' },
      payload: JSON.stringify({ query: '{ serverInfo { version } }' }),
    });

    expect(response.statusCode).toBe(415);
  });

  it('rejects a batch while batching is off', async () => {
    const response = await gateway.tollgate.gateway.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify([{ query: '{ serverInfo { version } }' }]),
    });

    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].message).toMatch(/Batched requests are disabled/);
  });
});

describe('batched requests when enabled', () => {
  const send = (body: unknown) =>
    batching.tollgate.gateway.app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });

  it('serves a batch within the bound', async () => {
    const response = await send([{ query: '{ serverInfo { version } }' }, { query: '{ serverInfo { time } }' }]);

    expect(response.statusCode).toBe(200);
    expect(response.json()).toHaveLength(2);
  });

  it('rejects a batch longer than the bound', async () => {
    const response = await send(Array.from({ length: 4 }, () => ({ query: '{ serverInfo { version } }' })));

    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].message).toMatch(/at most 3 operations/);
  });

  it('rejects logins spread over a batch past the bound', async () => {
    const response = await send([
      { query: `mutation { ${loginCall('a', 'x@example.com')} }` },
      { query: `mutation { ${loginCall('b', 'x@example.com')} }` },
      { query: `mutation { ${loginCall('c', 'x@example.com')} }` },
    ]);

    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].message).toMatch(/rate-limited mutations 3 times; at most 2/);
  });

  it('counts each batched login as one attempt', async () => {
    const { email } = newCredentials();
    const response = await send([{ query: `mutation { ${loginCall('a', email)} }` }, { query: `mutation { ${loginCall('b', email)} }` }]);
    const codes = (response.json() as Array<{ errors?: Array<{ extensions: { code: string } }> }>).map((entry) => entry.errors?.[0]?.extensions.code).sort();

    expect(codes).toEqual(['INVALID_CREDENTIALS', 'RATE_LIMITED']);
  });
});

describe('introspection', () => {
  it('is off in production unless configured', async () => {
    const production = await startTestGateway({ env: { NODE_ENV: 'production' } });
    try {
      const response = await post(production, '{ __schema { queryType { name } } }');

      expect(response.status).toBe(400);
      expect(messages(response)).toMatch(/introspection/i);
    } finally {
      await production.close();
    }
  });

  it('can be turned on in production', async () => {
    const production = await startTestGateway({ env: { NODE_ENV: 'production', TOLLGATE_GRAPHQL_INTROSPECTION: 'true' } });
    try {
      const response = await post(production, '{ __schema { queryType { name } } }');

      expect(response.status).toBe(200);
    } finally {
      await production.close();
    }
  });
});
