import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, signUp, type SignedIn } from '../helpers/flows.ts';
import { sql, type GraphQLResponse, type TestGateway } from '../helpers/harness.ts';
import { issueToken, startGatewayWithoutDeviceTiers } from './support.ts';

let gateway: TestGateway;
let user: SignedIn;
let paymentMethodId: string;

const changeEmail = 'mutation($email: String!) { changeEmail(newEmail: $email) { email } }';
const makePayment = 'mutation($input: MakePaymentInput!) { makePayment(input: $input) { amountCents } }';
const addPaymentMethod = 'mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { last4 } }';

const card = { kind: 'CARD', label: 'Test card', last4: '4242' };

function payment() {
  return { paymentMethodId, amountCents: 1250, currency: 'EUR', payee: 'Bakery' };
}

function errorOf(response: GraphQLResponse) {
  return response.body.errors?.[0];
}

beforeAll(async () => {
  gateway = await startGatewayWithoutDeviceTiers();
  user = await signUp(gateway);
  const added = await gateway.graphql('mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { id } }', { token: user.accessToken, variables: { input: card } });
  paymentMethodId = (added.body.data?.addPaymentMethod as { id: string }).id;
});

afterAll(async () => {
  await gateway?.close();
});

describe('tier matrix over HTTP', () => {
  const high: Array<[string, number, unknown]> = [
    ['aal2', 900, null],
    ['aal2', 901, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_old' }],
    ['aal1', 0, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_weak' }],
  ];
  it.each(high)('answers HIGH changeEmail with %s authenticated %i s ago', async (acr, age, expected) => {
    const token = await issueToken(gateway, user, { acr, ageSeconds: age });
    const email = `changed-${randomUUID()}@example.com`;
    const response = await gateway.graphql(changeEmail, { token, variables: { email } });

    expect(errorOf(response)?.extensions ?? null).toEqual(expected);
    expect(response.body.data?.changeEmail ?? null).toEqual(expected ? null : { email });
  });

  const critical: Array<[string, number, unknown]> = [
    ['aal2', 300, null],
    ['aal2', 301, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 300, reason: 'authentication_too_old' }],
    ['aal1', 0, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 300, reason: 'authentication_too_weak' }],
  ];
  it.each(critical)('answers CRITICAL makePayment with %s authenticated %i s ago', async (acr, age, expected) => {
    const token = await issueToken(gateway, user, { acr, ageSeconds: age });
    const response = await gateway.graphql(makePayment, { token, variables: { input: payment() } });

    expect(errorOf(response)?.extensions ?? null).toEqual(expected);
    expect(response.body.data?.makePayment ?? null).toEqual(expected ? null : { amountCents: 1250 });
  });

  it('allows MEDIUM and LOW with an old aal1 authentication', async () => {
    const token = await issueToken(gateway, user, { acr: 'aal1', ageSeconds: 30 * 24 * 3600 });
    const response = await gateway.graphql('{ me { id } myPaymentMethods { last4 } }', { token });

    expect(response.body.errors).toBeUndefined();
    expect(response.body.data?.myPaymentMethods).toEqual([{ last4: '4242' }]);
  });

  it('answers an anonymous LOW field with UNAUTHENTICATED', async () => {
    const response = await gateway.graphql('{ me { id } }');

    expect(errorOf(response)?.extensions).toEqual({ code: 'UNAUTHENTICATED' });
  });

  const andScopes: Array<[string[], unknown]> = [
    [['payments:read', 'payments:write'], null],
    [['payments:write'], { code: 'INSUFFICIENT_SCOPE', requiredScopes: [['payments:read', 'payments:write']] }],
    [['payments:read'], { code: 'INSUFFICIENT_SCOPE', requiredScopes: [['payments:read', 'payments:write']] }],
  ];
  it.each(andScopes)('needs both scopes of an AND with %j', async (scopes, expected) => {
    const token = await issueToken(gateway, user, { scopes });
    const response = await gateway.graphql(addPaymentMethod, { token, variables: { input: { ...card, last4: '1111' } } });

    expect(errorOf(response)?.extensions ?? null).toEqual(expected);
  });

  const orScopes: Array<[string[], unknown]> = [
    [['payments:read'], null],
    [['payments:write'], null],
    [['profile'], { code: 'INSUFFICIENT_SCOPE', requiredScopes: [['payments:read'], ['payments:write']] }],
  ];
  it.each(orScopes)('needs one alternative of an OR with %j', async (scopes, expected) => {
    const token = await issueToken(gateway, user, { scopes });
    const response = await gateway.graphql('{ myPaymentMethods { id } }', { token });

    expect(errorOf(response)?.extensions ?? null).toEqual(expected);
  });

  it('needs the scope of @requiresScopes on top of a satisfied tier', async () => {
    const token = await issueToken(gateway, user, { acr: 'aal2', scopes: ['profile', 'payments:read'] });
    const response = await gateway.graphql(changeEmail, { token, variables: { email: `scope-${randomUUID()}@example.com` } });

    expect(errorOf(response)?.extensions).toEqual({ code: 'INSUFFICIENT_SCOPE', requiredScopes: [['account']] });
  });
});

describe('whole-operation refusals', () => {
  it('answers a refused step-up with 401 and the RFC 9470 challenge', async () => {
    const token = await issueToken(gateway, user, { acr: 'aal1' });
    const response = await gateway.graphql(makePayment, { token, variables: { input: payment() } });

    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tollgate", error="insufficient_user_authentication", acr_values="aal2", max_age=300');
  });

  it('answers a missing scope with 403 and insufficient_scope', async () => {
    const token = await issueToken(gateway, user, { scopes: ['payments:write'] });
    const response = await gateway.graphql(addPaymentMethod, { token, variables: { input: card } });

    expect(response.status).toBe(403);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tollgate", error="insufficient_scope", scope="payments:read payments:write"');
  });

  it('keeps 200 and partial results when one root field is refused', async () => {
    const token = await issueToken(gateway, user, { acr: 'aal1' });
    const response = await gateway.graphql(`mutation($email: String!) { updateProfile(displayName: "Partial") { displayName } changeEmail(newEmail: $email) { email } }`, {
      token,
      variables: { email: `partial-${randomUUID()}@example.com` },
    });

    expect(response.status).toBe(200);
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(response.body.data).toEqual({ updateProfile: { displayName: 'Partial' }, changeEmail: null });
    expect(response.body.errors).toEqual([expect.objectContaining({ path: ['changeEmail'], extensions: expect.objectContaining({ code: 'STEP_UP_REQUIRED' }) })]);
  });

  it('refuses a whole operation whose root fields are all refused', async () => {
    const token = await issueToken(gateway, user, { acr: 'aal1' });
    const response = await gateway.graphql(`mutation($a: String!, $b: String!) { a: changeEmail(newEmail: $a) { email } b: changeEmail(newEmail: $b) { email } }`, {
      token,
      variables: { a: `a-${randomUUID()}@example.com`, b: `b-${randomUUID()}@example.com` },
    });

    expect(response.status).toBe(401);
    expect(response.body.data).toEqual({ a: null, b: null });
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tollgate", error="insufficient_user_authentication", acr_values="aal2", max_age=900');
  });
});

describe('selections cannot bypass a rule', () => {
  let stranger: SignedIn;
  let ownTransaction: string;
  let foreignTransaction: string;

  beforeAll(async () => {
    stranger = await signUp(gateway);
    const token = await issueToken(gateway, user, { acr: 'aal2' });
    const paid = await gateway.graphql('mutation($input: MakePaymentInput!) { makePayment(input: $input) { id } }', { token, variables: { input: payment() } });
    ownTransaction = (paid.body.data?.makePayment as { id: string }).id;

    const strangerMethod = await gateway.graphql('mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { id } }', { token: stranger.accessToken, variables: { input: card } });
    const strangerToken = await issueToken(gateway, stranger, { acr: 'aal2' });
    const strangerPaid = await gateway.graphql('mutation($input: MakePaymentInput!) { makePayment(input: $input) { id } }', {
      token: strangerToken,
      variables: { input: { ...payment(), paymentMethodId: (strangerMethod.body.data?.addPaymentMethod as { id: string }).id } },
    });
    foreignTransaction = (strangerPaid.body.data?.makePayment as { id: string }).id;
  });

  it('checks aliases of one field with different arguments each on their own', async () => {
    const response = await gateway.graphql(`query($own: ID!, $foreign: ID!) { mine: transaction(id: $own) { id } theirs: transaction(id: $foreign) { id } }`, {
      token: user.accessToken,
      variables: { own: ownTransaction, foreign: foreignTransaction },
    });

    expect(response.body.data).toEqual({ mine: { id: ownTransaction }, theirs: null });
    expect(response.body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([[['theirs'], 'FORBIDDEN']]);
  });

  it('answers a foreign id like a missing one', async () => {
    const missing = await gateway.graphql('query($id: ID!) { transaction(id: $id) { id } }', { token: user.accessToken, variables: { id: randomUUID() } });
    const foreign = await gateway.graphql('query($id: ID!) { transaction(id: $id) { id } }', { token: user.accessToken, variables: { id: foreignTransaction } });

    expect(missing.body).toEqual(foreign.body);
  });

  it('rejects a malformed id as input, not as a denial', async () => {
    const response = await gateway.graphql('{ transaction(id: "not-an-id") { id } }', { token: user.accessToken });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
  });

  it('rejects a payment from another user\'s payment method', async () => {
    const [row] = await sql<{ id: string }>(gateway, 'SELECT id FROM payment_methods WHERE user_id = $1', [stranger.userId]);
    const token = await issueToken(gateway, user, { acr: 'aal2' });
    const response = await gateway.graphql(makePayment, { token, variables: { input: { ...payment(), paymentMethodId: row?.id } } });

    expect(errorOf(response)?.extensions).toEqual({ code: 'FORBIDDEN' });
  });

  it('checks ownership again on nested objects', async () => {
    // A row linking this user's transaction to a stranger's payment method, as a faulty import might.
    const [foreignMethod] = await sql<{ id: string }>(gateway, 'SELECT id FROM payment_methods WHERE user_id = $1', [stranger.userId]);
    await sql(gateway, `INSERT INTO transactions (id, user_id, payment_method_id, amount_cents, currency, description, payee, status, created_at) VALUES ($1, $2, $3, 1, 'EUR', '', 'Import', 'COMPLETED', now())`, [
      randomUUID(),
      user.userId,
      foreignMethod?.id,
    ]);
    const response = await gateway.graphql('{ myTransactions(first: 50) { edges { node { payee paymentMethod { label last4 } } } } }', { token: user.accessToken });
    const edges = (response.body.data?.myTransactions as { edges: Array<{ node: { payee: string; paymentMethod: unknown } }> }).edges;

    expect(edges.find((edge) => edge.node.payee === 'Import')?.node.paymentMethod).toEqual({ label: null, last4: null });
    expect(edges.find((edge) => edge.node.payee === 'Bakery')?.node.paymentMethod).toEqual({ label: 'Test card', last4: '4242' });
    expect(new Set(response.body.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['FORBIDDEN']));
  });
});
