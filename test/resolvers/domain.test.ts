import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, login, signUp, type SignedIn } from '../helpers/flows.ts';
import { sql, type TestGateway } from '../helpers/harness.ts';
import { issueToken, manualClock, startGatewayWithoutDeviceTiers } from '../authz/support.ts';

let gateway: TestGateway;

const card = { kind: 'CARD', label: 'Everyday card', last4: '4242' };

interface Page {
  edges: Array<{ cursor: string; node: { payee: string } }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

beforeAll(async () => {
  gateway = await startGatewayWithoutDeviceTiers();
});

afterAll(async () => {
  await gateway?.close();
});

/** Issues an access token whose authentication satisfies HIGH and CRITICAL right now. */
function steppedUp(user: SignedIn) {
  return issueToken(gateway, user, { acr: 'aal2', amr: ['pwd', 'otp'] });
}

async function addCard(user: SignedIn, overrides: Partial<typeof card> = {}): Promise<string> {
  const response = await gateway.graphql('mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { id } }', { token: user.accessToken, variables: { input: { ...card, ...overrides } } });
  const added = response.body.data?.addPaymentMethod as { id: string } | null;
  if (!added) throw new Error(`addPaymentMethod failed: ${JSON.stringify(response.body.errors)}`);
  return added.id;
}

describe('profile', () => {
  it('updates the display name', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql('mutation { updateProfile(displayName: "  Ada  ") { displayName } }', { token: user.accessToken });

    expect(response.body.data?.updateProfile).toEqual({ displayName: 'Ada' });
  });

  it('rejects an empty display name', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql('mutation { updateProfile(displayName: " ") { displayName } }', { token: user.accessToken });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'displayName' });
  });
});

describe('payment methods', () => {
  it('adds and lists payment methods newest first', async () => {
    const user = await signUp(gateway);
    await addCard(user, { label: 'First' });
    manualClock(gateway).advance(1);
    await addCard(user, { label: 'Second', last4: '0005' });
    const response = await gateway.graphql('{ myPaymentMethods { label last4 kind } me { paymentMethods { label } totpEnabled } }', { token: user.accessToken });

    expect(response.body.data?.myPaymentMethods).toEqual([
      { label: 'Second', last4: '0005', kind: 'CARD' },
      { label: 'First', last4: '4242', kind: 'CARD' },
    ]);
    expect(response.body.data?.me).toEqual({ paymentMethods: [{ label: 'Second' }, { label: 'First' }], totpEnabled: false });
  });

  it.each([
    [{ last4: '42' }, 'input.last4'],
    [{ label: '' }, 'input.label'],
  ])('rejects %j naming %s', async (overrides, field) => {
    const user = await signUp(gateway);
    const response = await gateway.graphql('mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { id } }', { token: user.accessToken, variables: { input: { ...card, ...overrides } } });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field });
  });
});

describe('payments and history', () => {
  let user: SignedIn;

  beforeAll(async () => {
    user = await signUp(gateway);
    const methodId = await addCard(user);
    const token = await steppedUp(user);
    for (const payee of ['One', 'Two', 'Three', 'Four', 'Five']) {
      const response = await gateway.graphql('mutation($input: MakePaymentInput!) { makePayment(input: $input) { status currency amountCents paymentMethod { last4 } } }', {
        token,
        variables: { input: { paymentMethodId: methodId, amountCents: 500, currency: 'EUR', payee } },
      });
      expect(response.body.data?.makePayment).toEqual({ status: 'COMPLETED', currency: 'EUR', amountCents: 500, paymentMethod: { last4: '4242' } });
      manualClock(gateway).advance(1);
    }
  });

  async function page(first: number, after?: string | null): Promise<Page> {
    const response = await gateway.graphql('query($first: Int, $after: String) { myTransactions(first: $first, after: $after) { edges { cursor node { payee } } pageInfo { hasNextPage endCursor } } }', {
      token: (await login(gateway, user.email, user.password)).accessToken,
      variables: { first, after },
    });
    return response.body.data?.myTransactions as Page;
  }

  it('pages through transactions newest first', async () => {
    const first = await page(2);
    const second = await page(2, first.pageInfo.endCursor);
    const third = await page(2, second.pageInfo.endCursor);

    expect([first, second, third].flatMap((result) => result.edges.map((edge) => edge.node.payee))).toEqual(['Five', 'Four', 'Three', 'Two', 'One']);
    expect([first, second, third].map((result) => result.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect(third.pageInfo.endCursor).toBe(third.edges[0]?.cursor);
  });

  it('continues from any edge cursor', async () => {
    const all = await page(5);
    const rest = await page(5, all.edges[1]?.cursor);

    expect(rest.edges.map((edge) => edge.node.payee)).toEqual(['Three', 'Two', 'One']);
  });

  it.each([
    ['garbage', { first: 2, after: 'not-a-cursor' }, 'after'],
    ['a zero page size', { first: 0 }, 'first'],
    ['a page size over 100', { first: 101 }, 'first'],
  ])('rejects %s', async (_case, variables, field) => {
    const response = await gateway.graphql('query($first: Int, $after: String) { myTransactions(first: $first, after: $after) { pageInfo { hasNextPage } } }', { token: user.accessToken, variables });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field });
  });

  it('shows no transactions of another user', async () => {
    const stranger = await signUp(gateway);
    const response = await gateway.graphql('{ myTransactions { edges { node { payee } } } }', { token: stranger.accessToken });

    expect(response.body.data?.myTransactions).toEqual({ edges: [] });
  });

  it('rejects an invalid currency', async () => {
    const [method] = await sql<{ id: string }>(gateway, 'SELECT id FROM payment_methods WHERE user_id = $1', [user.userId]);
    const response = await gateway.graphql('mutation($input: MakePaymentInput!) { makePayment(input: $input) { id } }', {
      token: await steppedUp(user),
      variables: { input: { paymentMethodId: method?.id, amountCents: 500, currency: 'euro', payee: 'Shop' } },
    });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'input.currency' });
  });
});

describe('credential changes', () => {
  it('changes the email used to sign in', async () => {
    const user = await signUp(gateway);
    const email = `renamed-${randomUUID()}@example.com`;
    const response = await gateway.graphql('mutation($email: String!) { changeEmail(newEmail: $email) { email } }', { token: await steppedUp(user), variables: { email: email.toUpperCase() } });

    expect(response.body.data?.changeEmail).toEqual({ email });
    expect((await login(gateway, email, user.password)).userId).toBe(user.userId);
  });

  it('rejects an email another account uses', async () => {
    const user = await signUp(gateway);
    const other = await signUp(gateway);
    const response = await gateway.graphql('mutation($email: String!) { changeEmail(newEmail: $email) { email } }', { token: await steppedUp(user), variables: { email: other.email } });

    expect(response.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'newEmail' });
  });

  it('changes the password and revokes the other sessions', async () => {
    const user = await signUp(gateway);
    const other = await login(gateway, user.email, user.password);
    const token = await steppedUp(user);
    const newPassword = `new-${randomUUID()}`;
    const response = await gateway.graphql('mutation($input: ChangePasswordInput!) { changePassword(input: $input) }', { token, variables: { input: { currentPassword: user.password, newPassword } } });

    expect(response.body.data?.changePassword).toBe(1);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: other.accessToken }))).toBe('TOKEN_REVOKED');
    expect((await gateway.graphql('{ me { id } }', { token })).body.data?.me).toEqual({ id: user.userId });
    expect((await login(gateway, user.email, newPassword)).userId).toBe(user.userId);
    const [revoked] = await sql<{ revoke_reason: string }>(gateway, 'SELECT revoke_reason FROM sessions WHERE id = $1', [other.sessionId]);
    expect(revoked?.revoke_reason).toBe('password_changed');
  });

  it('rejects a wrong current password', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql('mutation($input: ChangePasswordInput!) { changePassword(input: $input) }', {
      token: await steppedUp(user),
      variables: { input: { currentPassword: 'not my password', newPassword: 'a brand new password' } },
    });

    expect(errorCode(response)).toBe('INVALID_CREDENTIALS');
  });
});

describe('account deletion', () => {
  it('revokes every session, frees the email and removes payment methods', async () => {
    const user = await signUp(gateway);
    const other = await login(gateway, user.email, user.password);
    await addCard(user);
    const token = await steppedUp(user);
    const response = await gateway.graphql('mutation { deleteAccount }', { token });

    expect(response.body.data?.deleteAccount).toBe(true);
    expect(errorCode(await gateway.graphql('{ me { id } }', { token }))).toBe('TOKEN_REVOKED');
    expect(errorCode(await gateway.graphql('{ me { id } }', { token: other.accessToken }))).toBe('TOKEN_REVOKED');
    expect(await sql(gateway, 'SELECT id FROM payment_methods WHERE user_id = $1', [user.userId])).toEqual([]);
    expect(errorCode(await gateway.graphql('mutation($input: LoginInput!) { login(input: $input) { __typename } }', { variables: { input: { email: user.email, password: user.password, device: { platform: 'IOS' } } } }))).toBe('INVALID_CREDENTIALS');
    expect((await signUp(gateway, { email: user.email })).userId).not.toBe(user.userId);
  });
});
