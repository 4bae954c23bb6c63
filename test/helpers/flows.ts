import { randomUUID } from 'node:crypto';

import type { TestGateway } from './harness.ts';

export const defaultDevice = { platform: 'IOS', model: 'iPhone15,2', osVersion: '18.1', appVersion: '2.4.0' };

export interface SignedIn {
  email: string;
  password: string;
  userId: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
}

const authSuccessFields = `
  __typename
  ... on AuthSuccess {
    tokens { accessToken refreshToken tokenType accessTokenExpiresAt refreshTokenExpiresAt }
    user { id email }
    session { id current }
  }`;

export const signUpMutation = `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { ${authSuccessFields} } }`;
export const loginMutation = `mutation Login($input: LoginInput!) { login(input: $input) { ${authSuccessFields} } }`;
export const refreshMutation = `mutation Refresh($token: String!) { refreshSession(refreshToken: $token) { accessToken refreshToken tokenType } }`;

function signedInFrom(result: Record<string, unknown>, email: string, password: string): SignedIn {
  const payload = result as { tokens: { accessToken: string; refreshToken: string }; user: { id: string }; session: { id: string } };
  return { email, password, userId: payload.user.id, sessionId: payload.session.id, accessToken: payload.tokens.accessToken, refreshToken: payload.tokens.refreshToken };
}

export async function signUp(gateway: TestGateway, overrides: { email?: string; password?: string } = {}): Promise<SignedIn> {
  const email = overrides.email ?? `user-${randomUUID()}@example.com`;
  const password = overrides.password ?? `pw-${randomUUID()}`;
  const response = await gateway.graphql(signUpMutation, { variables: { input: { email, password, device: defaultDevice } } });
  if (!response.body.data?.signUp) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
  return signedInFrom(response.body.data.signUp as Record<string, unknown>, email, password);
}

export async function login(gateway: TestGateway, email: string, password: string): Promise<SignedIn> {
  const response = await gateway.graphql(loginMutation, { variables: { input: { email, password, device: defaultDevice } } });
  if (!response.body.data?.login) throw new Error(`login failed: ${JSON.stringify(response.body.errors)}`);
  return signedInFrom(response.body.data.login as Record<string, unknown>, email, password);
}

export async function refresh(gateway: TestGateway, token: string) {
  return gateway.graphql(refreshMutation, { variables: { token } });
}

export function errorCode(response: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }): unknown {
  return response.body.errors?.[0]?.extensions?.code;
}
