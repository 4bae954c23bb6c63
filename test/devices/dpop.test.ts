import { randomUUID } from 'node:crypto';

import { base64url, exportJWK, generateKeyPair, generateSecret, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { epochSeconds, type ManualClock } from '../../src/clock.ts';
import { accessTokenHash, jwkThumbprint, normaliseHtu } from '../../src/devices/dpop.ts';
import { errorCode } from '../helpers/flows.ts';
import { athOf, createDeviceKey, dpopGraphql, graphqlUrl, signProof, signUpWithKey, type DeviceKey, type KeyBoundUser } from '../helpers/dpop.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;
let key: DeviceKey;
let user: KeyBoundUser;

beforeAll(async () => {
  gateway = await startTestGateway();
  key = await createDeviceKey();
  user = await signUpWithKey(gateway, key);
});

afterAll(async () => {
  await gateway?.close();
});

const me = '{ me { id } }';

function unsignedProof(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode(header)}.${encode(claims)}.`;
}

function claimsNow(accessToken: string): Record<string, unknown> {
  return { jti: randomUUID(), htm: 'POST', htu: graphqlUrl, iat: epochSeconds(gateway.clock.now()), ath: athOf(accessToken) };
}

describe('DPoP proof on resource requests', () => {
  it('accepts a valid proof from the bound key', async () => {
    const response = await dpopGraphql(gateway, key, user.accessToken, me);

    expect(response.status).toBe(200);
    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('accepts an htu that normalises to the request URL', async () => {
    const response = await dpopGraphql(gateway, key, user.accessToken, me, { proof: { htu: 'HTTP://127.0.0.1:4000/api/../%67raphql' } });

    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  it('accepts an iat at the edge of the window', async () => {
    const response = await dpopGraphql(gateway, key, user.accessToken, me, { proof: { iat: epochSeconds(gateway.clock.now()) - 60 } });

    expect(response.body.data?.me).toEqual({ id: user.userId });
  });

  const proofCases: Array<{ name: string; reason: string; proof: () => Promise<string | null> }> = [
    { name: 'missing proof', reason: 'missing', proof: async () => null },
    { name: 'wrong htm', reason: 'htm_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htm: 'GET' }) },
    { name: 'lower-case htm', reason: 'htm_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htm: 'post' }) },
    { name: 'wrong htu path', reason: 'htu_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htu: 'http://127.0.0.1:4000/other' }) },
    { name: 'wrong htu host', reason: 'htu_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htu: 'http://attacker.example:4000/graphql' }) },
    { name: 'htu with query', reason: 'htu_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htu: `${graphqlUrl}?operation=me` }) },
    { name: 'htu with fragment', reason: 'htu_mismatch', proof: () => signProof(gateway, key, { accessToken: user.accessToken, htu: `${graphqlUrl}#me` }) },
    { name: 'stale iat', reason: 'stale_iat', proof: () => signProof(gateway, key, { accessToken: user.accessToken, iat: epochSeconds(gateway.clock.now()) - 61 }) },
    { name: 'future iat', reason: 'future_iat', proof: () => signProof(gateway, key, { accessToken: user.accessToken, iat: epochSeconds(gateway.clock.now()) + 11 }) },
    { name: 'ath of another token', reason: 'ath_mismatch', proof: () => signProof(gateway, key, { ath: athOf(`${user.accessToken}x`) }) },
    { name: 'no ath', reason: 'ath_mismatch', proof: () => signProof(gateway, key) },
    {
      name: 'proof from another key',
      reason: 'key_mismatch',
      proof: async () => signProof(gateway, await createDeviceKey(), { accessToken: user.accessToken }),
    },
    { name: 'alg none', reason: 'bad_alg', proof: async () => unsignedProof({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }, claimsNow(user.accessToken)) },
    {
      name: 'symmetric alg HS256',
      reason: 'bad_alg',
      proof: async () => {
        const secret = await generateSecret('HS256');
        return new SignJWT(claimsNow(user.accessToken)).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk }).sign(secret);
      },
    },
    {
      name: 'ES384 on a P-384 key',
      reason: 'bad_alg',
      proof: async () => {
        const pair = await generateKeyPair('ES384', { extractable: true });
        return new SignJWT(claimsNow(user.accessToken)).setProtectedHeader({ alg: 'ES384', typ: 'dpop+jwt', jwk: await exportJWK(pair.publicKey) }).sign(pair.privateKey);
      },
    },
    {
      name: 'private key material in jwk',
      reason: 'bad_jwk',
      proof: async () => {
        const privateJwk = await exportJWK(key.privateKey);
        return signProof(gateway, key, { accessToken: user.accessToken, header: { jwk: privateJwk } });
      },
    },
    {
      name: 'jwk point not on the curve',
      reason: 'bad_jwk',
      proof: () => signProof(gateway, key, { accessToken: user.accessToken, header: { jwk: { ...key.publicJwk, y: key.publicJwk.x } } }),
    },
    { name: 'jwk missing', reason: 'bad_jwk', proof: () => signProof(gateway, key, { accessToken: user.accessToken, header: { jwk: undefined } }) },
    { name: 'typ jwt', reason: 'bad_typ', proof: () => signProof(gateway, key, { accessToken: user.accessToken, header: { typ: 'JWT' } }) },
    {
      name: 'signature by another key',
      reason: 'bad_signature',
      proof: async () => signProof(gateway, await createDeviceKey(), { accessToken: user.accessToken, header: { jwk: key.publicJwk } }),
    },
    { name: 'not a JWS', reason: 'malformed', proof: async () => 'not-a-proof' },
    {
      name: 'two proofs in one header',
      reason: 'malformed',
      proof: async () => `${await signProof(gateway, key, { accessToken: user.accessToken })}, ${await signProof(gateway, key, { accessToken: user.accessToken })}`,
    },
    {
      name: 'iat as a string',
      reason: 'malformed',
      proof: async () => new SignJWT({ ...claimsNow(user.accessToken), iat: 'now' } as Record<string, unknown>).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk }).sign(key.privateKey),
    },
  ];

  for (const proofCase of proofCases) {
    it(`rejects ${proofCase.name} as ${proofCase.reason}`, async () => {
      const response = await dpopGraphql(gateway, key, user.accessToken, me, { dpop: await proofCase.proof() });

      expect(response.status).toBe(401);
      expect(errorCode(response)).toBe('DPOP_PROOF_INVALID');
      expect(response.body.errors?.[0]?.extensions?.reason).toBe(proofCase.reason);
      expect(response.headers['www-authenticate']).toMatch(/^DPoP realm="tollgate", error="invalid_dpop_proof", .*algs="ES256"$/);
    });
  }

  it('rejects a replayed proof', async () => {
    const proof = await signProof(gateway, key, { accessToken: user.accessToken });
    const first = await dpopGraphql(gateway, key, user.accessToken, me, { dpop: proof });
    const replay = await dpopGraphql(gateway, key, user.accessToken, me, { dpop: proof });

    expect(first.status).toBe(200);
    expect(replay.status).toBe(401);
    expect(replay.body.errors?.[0]?.extensions?.reason).toBe('replayed_jti');
  });

  it('rejects a key-bound token sent as a bearer token', async () => {
    const response = await gateway.graphql(me, { token: user.accessToken, headers: { dpop: await signProof(gateway, key, { accessToken: user.accessToken }) } });

    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.reason).toBe('wrong_scheme');
  });

  it('keeps proofs and keys out of the log', async () => {
    const proof = await signProof(gateway, key, { accessToken: user.accessToken, htm: 'GET' });
    await dpopGraphql(gateway, key, user.accessToken, me, { dpop: proof });

    expect(gateway.logs.text()).not.toContain(proof.split('.')[2]);
    expect(gateway.logs.text()).not.toContain(user.accessToken);
  });

  it('sends no SQL statement for a key-bound request', async () => {
    await dpopGraphql(gateway, key, user.accessToken, me);
    // The audit chainer links events in the background; it is stopped so only the request path counts.
    await gateway.tollgate.services.auditChainer.stop();
    await gateway.tollgate.services.auditChainer.chainAll();
    const before = gateway.tollgate.services.database.queryCount();

    for (let i = 0; i < 3; i += 1) {
      const response = await dpopGraphql(gateway, key, user.accessToken, me);
      expect(response.body.data?.me).toEqual({ id: user.userId });
    }

    expect(gateway.tollgate.services.database.queryCount()).toBe(before);
  });
});

describe('DPoP server nonce', () => {
  let nonceGateway: TestGateway;
  let nonceKey: DeviceKey;

  beforeAll(async () => {
    nonceGateway = await startTestGateway({ env: { TOLLGATE_DPOP_NONCE_REQUIRED: 'true' } });
    nonceKey = await createDeviceKey();
  });

  afterAll(async () => {
    await nonceGateway?.close();
  });

  it('asks for a nonce, then accepts it', async () => {
    const first = await nonceGateway.graphql('{ serverInfo { version } }');
    const nonce = first.headers['dpop-nonce'] as string;
    const bound = await signUpWithKeyAndNonce(nonceGateway, nonceKey, nonce);
    const rejected = await dpopGraphql(nonceGateway, nonceKey, bound, me);
    const accepted = await dpopGraphql(nonceGateway, nonceKey, bound, me, { proof: { nonce: rejected.headers['dpop-nonce'] as string } });

    expect(rejected.status).toBe(401);
    expect(rejected.body.errors?.[0]?.extensions?.reason).toBe('nonce_required');
    expect(rejected.headers['www-authenticate']).toContain('error="use_dpop_nonce"');
    expect(accepted.status).toBe(200);
  });

  it('rejects a nonce from two windows ago', async () => {
    const old = (await nonceGateway.graphql('{ serverInfo { version } }')).headers['dpop-nonce'] as string;
    (nonceGateway.clock as ManualClock).advance(121);
    const bound = await signUpWithKeyAndNonce(nonceGateway, nonceKey, (await nonceGateway.graphql('{ serverInfo { version } }')).headers['dpop-nonce'] as string);
    const response = await dpopGraphql(nonceGateway, nonceKey, bound, me, { proof: { nonce: old } });

    expect(response.body.errors?.[0]?.extensions?.reason).toBe('nonce_required');
  });
});

async function signUpWithKeyAndNonce(target: TestGateway, deviceKey: DeviceKey, nonce: string): Promise<string> {
  const response = await target.graphql('mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { tokens { accessToken } } } }', {
    variables: { input: { email: `user-${randomUUID()}@example.com`, password: `pw-${randomUUID()}`, device: { platform: 'IOS', publicKey: deviceKey.publicJwk } } },
    headers: { dpop: await signProof(target, deviceKey, { nonce }) },
  });
  const tokens = (response.body.data?.signUp as { tokens?: { accessToken: string } } | undefined)?.tokens;
  if (!tokens) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
  return tokens.accessToken;
}

describe('DPoP helpers', () => {
  it('computes the RFC 7638 thumbprint jose computes', async () => {
    const deviceKey = await createDeviceKey();

    expect(jwkThumbprint(deviceKey.publicJwk)).toBe(deviceKey.jkt);
  });

  it('hashes the access token for ath as RFC 9449 §4.2 says', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });

  const htuCases: Array<[string, string | undefined]> = [
    ['https://Server.Example.COM:443/graphql', 'https://server.example.com/graphql'],
    ['http://127.0.0.1:80', 'http://127.0.0.1/'],
    ['http://127.0.0.1:4000/a/./b/../graphql', 'http://127.0.0.1:4000/a/graphql'],
    ['http://127.0.0.1:4000/%7euser/%2f', 'http://127.0.0.1:4000/~user/%2F'],
    ['http://127.0.0.1:4000/graphql?', undefined],
    ['http://user:pass@127.0.0.1:4000/graphql', undefined],
    ['ftp://127.0.0.1/graphql', undefined],
    ['/graphql', undefined],
  ];

  for (const [input, expected] of htuCases) {
    it(`normalises ${input}`, () => {
      expect(normaliseHtu(input)).toBe(expected);
    });
  }
});
