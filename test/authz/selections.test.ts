import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultDevice, signUp, type SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

// Built-in tiers: a client without a device key has trust UNKNOWN, so every MEDIUM field is refused
// while LOW fields resolve. Each query below reaches User.paymentMethods (MEDIUM) another way.
let gateway: TestGateway;
let user: SignedIn;

const refusal = { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'BASIC', currentTrust: 'UNKNOWN' };

beforeAll(async () => {
  gateway = await startTestGateway({ env: { TOLLGATE_RISK_ASSESSED_TIERS: 'NONE' } });
  user = await signUp(gateway);
});

afterAll(async () => {
  await gateway?.close();
});

function refusedPaths(response: { body: { errors?: Array<{ path?: Array<string | number>; extensions?: Record<string, unknown> }> } }) {
  return response.body.errors?.map((error) => ({ path: error.path, extensions: error.extensions }));
}

describe('selections of a MEDIUM field under LOW parents', () => {
  it('refuses a nested selection and keeps its siblings', async () => {
    const response = await gateway.graphql('{ me { id paymentMethods { id } } }', { token: user.accessToken });

    expect(response.status).toBe(200);
    expect(response.body.data).toEqual({ me: { id: user.userId, paymentMethods: null } });
    expect(refusedPaths(response)).toEqual([{ path: ['me', 'paymentMethods'], extensions: refusal }]);
  });

  it('refuses a field reached through a named fragment', async () => {
    const response = await gateway.graphql('query { me { ...Wallet } } fragment Wallet on User { email paymentMethods { last4 } }', { token: user.accessToken });

    expect(response.body.data).toEqual({ me: { email: user.email, paymentMethods: null } });
    expect(refusedPaths(response)).toEqual([{ path: ['me', 'paymentMethods'], extensions: refusal }]);
  });

  it('refuses a field reached through an inline fragment', async () => {
    const response = await gateway.graphql(
      `mutation($input: LoginInput!) { login(input: $input) { ... on AuthSuccess { user { id ... on User { paymentMethods { id } } } } } }`,
      { variables: { input: { email: user.email, password: user.password, device: defaultDevice } } },
    );

    expect(response.body.data).toEqual({ login: { user: { id: user.userId, paymentMethods: null } } });
    expect(refusedPaths(response)).toEqual([{ path: ['login', 'user', 'paymentMethods'], extensions: refusal }]);
  });

  it('refuses every alias of a field', async () => {
    const response = await gateway.graphql('{ a: myTransactions(first: 1) { pageInfo { hasNextPage } } b: myTransactions(first: 2) { pageInfo { hasNextPage } } me { id } }', {
      token: user.accessToken,
    });

    expect(response.body.data).toEqual({ a: null, b: null, me: { id: user.userId } });
    expect(refusedPaths(response)).toEqual([
      { path: ['a'], extensions: refusal },
      { path: ['b'], extensions: refusal },
    ]);
  });

  it('refuses an alias inside a fragment spread twice', async () => {
    const response = await gateway.graphql('query { me { ...A ...B } } fragment A on User { x: paymentMethods { id } } fragment B on User { y: paymentMethods { label } }', {
      token: user.accessToken,
    });

    expect(response.body.data).toEqual({ me: { x: null, y: null } });
    expect(refusedPaths(response)?.map((error) => error.path)).toEqual([
      ['me', 'x'],
      ['me', 'y'],
    ]);
  });

  it('answers 403 without a challenge when device trust refuses everything', async () => {
    const response = await gateway.graphql('{ myPaymentMethods { id } }', { token: user.accessToken });

    expect(response.status).toBe(403);
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(refusedPaths(response)).toEqual([{ path: ['myPaymentMethods'], extensions: refusal }]);
  });
});
