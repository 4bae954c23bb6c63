import { createHash, randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

import { epochSeconds } from '../../src/clock.ts';
import { defaultDevice, loginMutation, refreshMutation, signUpMutation, type SignedIn } from './flows.ts';
import type { GraphQLResponse, TestGateway } from './harness.ts';

/** The URL proofs name in tests: the default TOLLGATE_ISSUER plus the GraphQL path. */
export const graphqlUrl = 'http://127.0.0.1:4000/graphql';

export interface DeviceKey {
  privateKey: CryptoKey;
  publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  /** RFC 7638 thumbprint, as `cnf.jkt` carries it. */
  jkt: string;
}

export async function createDeviceKey(): Promise<DeviceKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const publicJwk = { kty: 'EC' as const, crv: 'P-256' as const, x: jwk.x as string, y: jwk.y as string };
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export interface ProofOptions {
  htm?: string;
  htu?: string;
  /** Epoch seconds; the gateway clock's now by default. */
  iat?: number;
  jti?: string;
  /** The access token whose hash becomes `ath`. */
  accessToken?: string;
  ath?: string;
  nonce?: string;
  /** Replaces protected header members, e.g. a `jwk` with private members. */
  header?: Record<string, unknown>;
}

export function athOf(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}

/** Signs a DPoP proof for a POST to /graphql at the gateway's current time, unless `options` set other claims. */
export async function signProof(gateway: TestGateway, key: DeviceKey, options: ProofOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: options.jti ?? randomUUID(),
    htm: options.htm ?? 'POST',
    htu: options.htu ?? graphqlUrl,
    iat: options.iat ?? epochSeconds(gateway.clock.now()),
  };
  const ath = options.ath ?? (options.accessToken ? athOf(options.accessToken) : undefined);
  if (ath !== undefined) claims.ath = ath;
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  const header = { alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk as JWK, ...options.header };
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** Sends a GraphQL request with `Authorization: DPoP <token>` and a proof for it. */
export async function dpopGraphql(
  gateway: TestGateway,
  key: DeviceKey,
  token: string,
  query: string,
  options: { variables?: Record<string, unknown>; proof?: ProofOptions; dpop?: string | null } = {},
): Promise<GraphQLResponse> {
  const headers: Record<string, string> = { authorization: `DPoP ${token}` };
  const proof = options.dpop === undefined ? await signProof(gateway, key, { accessToken: token, ...options.proof }) : options.dpop;
  if (proof !== null) headers.dpop = proof;
  return gateway.graphql(query, { variables: options.variables, headers });
}

export interface KeyBoundUser extends SignedIn {
  deviceId: string;
  tokenType: string;
}

function keyBoundFrom(result: Record<string, unknown>, email: string, password: string): KeyBoundUser {
  const payload = result as { tokens: { accessToken: string; refreshToken: string; tokenType: string }; user: { id: string }; session: { id: string } };
  return {
    email,
    password,
    userId: payload.user.id,
    sessionId: payload.session.id,
    accessToken: payload.tokens.accessToken,
    refreshToken: payload.tokens.refreshToken,
    tokenType: payload.tokens.tokenType,
    deviceId: '',
  };
}

async function deviceIdOf(gateway: TestGateway, sessionId: string): Promise<string> {
  const session = await gateway.tollgate.services.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId }, select: { deviceId: true } });
  return session.deviceId;
}

/** Signs up with `key` registered as the device key and a proof from it. */
export async function signUpWithKey(gateway: TestGateway, key: DeviceKey): Promise<KeyBoundUser> {
  const email = `user-${randomUUID()}@example.com`;
  const password = `pw-${randomUUID()}`;
  const response = await gateway.graphql(signUpMutation, {
    variables: { input: { email, password, device: { ...defaultDevice, publicKey: key.publicJwk } } },
    headers: { dpop: await signProof(gateway, key) },
  });
  if (!response.body.data?.signUp) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
  const user = keyBoundFrom(response.body.data.signUp as Record<string, unknown>, email, password);
  return { ...user, deviceId: await deviceIdOf(gateway, user.sessionId) };
}

/** Logs in with `key` registered as the device key and a proof from it. */
export async function loginWithKey(gateway: TestGateway, key: DeviceKey, email: string, password: string): Promise<KeyBoundUser> {
  const response = await gateway.graphql(loginMutation, {
    variables: { input: { email, password, device: { ...defaultDevice, publicKey: key.publicJwk } } },
    headers: { dpop: await signProof(gateway, key) },
  });
  if (!response.body.data?.login) throw new Error(`login failed: ${JSON.stringify(response.body.errors)}`);
  const user = keyBoundFrom(response.body.data.login as Record<string, unknown>, email, password);
  return { ...user, deviceId: await deviceIdOf(gateway, user.sessionId) };
}

/** Refreshes with a proof from `key`, or without a proof when `key` is null. */
export async function refreshWithProof(gateway: TestGateway, key: DeviceKey | null, refreshToken: string, proof: ProofOptions = {}): Promise<GraphQLResponse> {
  const headers: Record<string, string> = key ? { dpop: await signProof(gateway, key, proof) } : {};
  return gateway.graphql(refreshMutation, { variables: { token: refreshToken }, headers });
}

export type Pair = { accessToken: string; refreshToken: string; tokenType: string };

export function pairOf(response: GraphQLResponse): Pair {
  const pair = response.body.data?.refreshSession as Pair | undefined;
  if (!pair) throw new Error(`refresh failed: ${JSON.stringify(response.body.errors)}`);
  return pair;
}

export function reasonOf(response: GraphQLResponse): unknown {
  return response.body.errors?.[0]?.extensions?.reason;
}
