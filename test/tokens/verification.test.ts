import { createHmac } from 'node:crypto';

import { createLocalJWKSet, exportSPKI, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { errorCode, signUp, type SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;
let clock: ManualClock;
let user: SignedIn;
let claims: JWTPayload;

beforeAll(async () => {
  gateway = await startTestGateway();
  clock = gateway.clock as ManualClock;
  user = await signUp(gateway);
  claims = decode(user.accessToken).payload;
});

afterAll(async () => {
  await gateway?.close();
});

function decode(token: string): { header: Record<string, unknown>; payload: JWTPayload } {
  const [header, payload] = token.split('.') as [string, string];
  return { header: JSON.parse(Buffer.from(header, 'base64url').toString()), payload: JSON.parse(Buffer.from(payload, 'base64url').toString()) };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs with the ring's active key, so only the changed header or claim can be at fault. */
async function signWithRing(payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const key = gateway.tollgate.services.ring.signingKey();
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid, ...header }).sign(key.privateKey!);
}

async function expectRefused(token: string, code: string) {
  const response = await gateway.graphql('{ me { id } }', { token });
  expect(response.status).toBe(401);
  expect(errorCode(response)).toBe(code);
  expect(response.body.data).toBeUndefined();
  expect(String(response.headers['www-authenticate'])).toContain('error="invalid_token"');
}

describe('access-token verification', () => {
  it('verifies with jose against the published JWKS', async () => {
    const jwks = await gateway.tollgate.gateway.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    const verified = await jwtVerify(user.accessToken, createLocalJWKSet(jwks.json() as JSONWebKeySet), {
      algorithms: ['ES256'],
      typ: 'at+jwt',
      issuer: gateway.config.issuer,
      audience: gateway.config.audience,
      currentDate: gateway.clock.now(),
    });

    expect(verified.payload.sub).toBe(user.userId);
    expect(verified.protectedHeader.kid).toBe(gateway.tollgate.services.ring.signingKey().kid);
  });

  it('accepts the issued token', async () => {
    const response = await gateway.graphql('{ me { id } }', { token: user.accessToken });
    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('rejects alg none', async () => {
    const header = { ...decode(user.accessToken).header, alg: 'none' };
    await expectRefused(`${b64(header)}.${b64(claims)}.`, 'TOKEN_INVALID');
  });

  it('rejects HS256 signed with the public key', async () => {
    const key = gateway.tollgate.services.ring.signingKey();
    const pem = await exportSPKI(key.publicKey);
    const header = { alg: 'HS256', typ: 'at+jwt', kid: key.kid };
    for (const secret of [pem, JSON.stringify(key.publicJwk)]) {
      const input = `${b64(header)}.${b64(claims)}`;
      const signature = createHmac('sha256', secret).update(input).digest('base64url');
      await expectRefused(`${input}.${signature}`, 'TOKEN_INVALID');
    }
  });

  it('rejects a kid of another ring key', async () => {
    const nextKid = gateway.tollgate.services.ring.jwks().keys.find((key) => key.kid !== decode(user.accessToken).header.kid)?.kid;
    expect(nextKid).toBeDefined();
    await expectRefused(await signWithRing(claims, { kid: nextKid }), 'TOKEN_INVALID');
  });

  it('rejects an unknown kid', async () => {
    await expectRefused(await signWithRing(claims, { kid: 'no-such-key' }), 'TOKEN_INVALID');
  });

  it('rejects a missing kid', async () => {
    const key = gateway.tollgate.services.ring.signingKey();
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(key.privateKey!);
    await expectRefused(token, 'TOKEN_INVALID');
  });

  it('rejects a tampered payload', async () => {
    const [header, , signature] = user.accessToken.split('.');
    await expectRefused(`${header}.${b64({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })}.${signature}`, 'TOKEN_INVALID');
  });

  it.each([
    ['wrong iss', { iss: 'https://evil.example' }],
    ['wrong aud', { aud: 'another-api' }],
    ['nbf in the future', { nbf: Math.floor(Date.now() / 1000) + 3600 }],
    ['iat in the future', { iat: Math.floor(Date.now() / 1000) + 3600 }],
    ['missing sid', { sid: undefined }],
    ['missing jti', { jti: undefined }],
  ])('rejects %s', async (_name, change) => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const payload = { ...claims, iat: now, exp: now + 300, ...change } as JWTPayload;
    if ('nbf' in change) payload.nbf = now + 3600;
    if ('iat' in change) payload.iat = now + 3600;
    await expectRefused(await signWithRing(payload), 'TOKEN_INVALID');
  });

  it('rejects a wrong typ', async () => {
    for (const typ of ['JWT', 'dpop+jwt', 'application/jwt']) {
      await expectRefused(await signWithRing(claims, { typ }), 'TOKEN_INVALID');
    }
  });

  it('rejects a token expired beyond the skew as TOKEN_EXPIRED', async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    await expectRefused(await signWithRing({ ...claims, iat: now - 400, exp: now - 31 }), 'TOKEN_EXPIRED');
  });

  it('accepts a token expired within the skew', async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const token = await signWithRing({ ...claims, iat: now - 300, exp: now - 29 });
    const response = await gateway.graphql('{ me { id } }', { token });
    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('expires a cached token when the clock passes exp', async () => {
    const fresh = await signUp(gateway);
    expect((await gateway.graphql('{ me { id } }', { token: fresh.accessToken })).status).toBe(200);
    clock.advance(300 + 31);
    await expectRefused(fresh.accessToken, 'TOKEN_EXPIRED');
    clock.advance(-(300 + 31));
  });

  it.each([
    ['garbage', 'garbage'],
    ['two segments', 'a.b'],
    ['empty segments', '..'],
    ['non-JSON header', 'bm90IGpzb24.e30.c2ln'],
    ['very long', 'a'.repeat(20_000)],
  ])('rejects %s', async (_name, token) => {
    await expectRefused(token, 'TOKEN_INVALID');
  });

  it('rejects a malformed Authorization header', async () => {
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', `Bearer  ${user.accessToken} extra`, 'Token abc']) {
      const response = await gateway.graphql('{ me { id } }', { headers: { authorization } });
      expect(response.status, authorization).toBe(401);
      expect(errorCode(response)).toBe('TOKEN_INVALID');
    }
  });
});
