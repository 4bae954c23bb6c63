import { randomUUID } from 'node:crypto';

import { signProof, type DeviceKey } from '../helpers/dpop.ts';
import { defaultDevice, loginMutation, refreshMutation, signUpMutation } from '../helpers/flows.ts';
import type { GraphQLResponse, TestGateway } from '../helpers/harness.ts';

export interface InjectOptions {
  variables?: Record<string, unknown>;
  token?: string;
  /** The socket peer address the request comes from. */
  remoteAddress?: string;
  headers?: Record<string, string>;
}

/** Sends a GraphQL POST as if from `remoteAddress`. */
export async function post(gateway: TestGateway, query: string, options: InjectOptions = {}): Promise<GraphQLResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await gateway.tollgate.gateway.app.inject({
    method: 'POST',
    url: '/graphql',
    headers,
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    payload: JSON.stringify({ query, variables: options.variables }),
  });
  return { status: response.statusCode, headers: response.headers, body: response.json() };
}

export function newCredentials() {
  return { email: `user-${randomUUID()}@example.com`, password: `pw-${randomUUID()}` };
}

/** Builds the device input and DPoP header of a sign-in from `key`, or from a keyless device. */
async function deviceParts(gateway: TestGateway, key: DeviceKey | undefined) {
  if (!key) return { device: defaultDevice, headers: {} as Record<string, string> };
  return { device: { ...defaultDevice, publicKey: key.publicJwk }, headers: { dpop: await signProof(gateway, key) } as Record<string, string> };
}

export async function signUpAt(gateway: TestGateway, credentials: { email: string; password: string }, remoteAddress = '127.0.0.1', key?: DeviceKey) {
  const { device, headers } = await deviceParts(gateway, key);
  const response = await post(gateway, signUpMutation, { variables: { input: { ...credentials, device } }, remoteAddress, headers });
  const payload = response.body.data?.signUp as { user: { id: string }; tokens: { accessToken: string; refreshToken: string }; session: { id: string } } | undefined;
  if (!payload) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
  return { userId: payload.user.id, sessionId: payload.session.id, accessToken: payload.tokens.accessToken, refreshToken: payload.tokens.refreshToken };
}

export async function loginAt(gateway: TestGateway, credentials: { email: string; password: string }, remoteAddress = '127.0.0.1', key?: DeviceKey, extraHeaders: Record<string, string> = {}) {
  const { device, headers } = await deviceParts(gateway, key);
  return post(gateway, loginMutation, { variables: { input: { ...credentials, device } }, remoteAddress, headers: { ...headers, ...extraHeaders } });
}

export async function refreshAt(gateway: TestGateway, refreshToken: string, remoteAddress = '127.0.0.1', key?: DeviceKey) {
  const headers: Record<string, string> = key ? { dpop: await signProof(gateway, key) } : {};
  return post(gateway, refreshMutation, { variables: { token: refreshToken }, remoteAddress, headers });
}

export function codeOf(response: GraphQLResponse): unknown {
  return response.body.errors?.[0]?.extensions?.code;
}
