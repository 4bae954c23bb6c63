import { createHash } from 'node:crypto';

import { decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';

import { VirtualTime } from '../../sim/virtual-time.ts';
import { DpopSigner, loadOrCreateDeviceKey, MemoryTokenStorage } from '../../src/client/index.ts';
import { ScriptedServer } from './scripted.ts';
import { createClient, graphqlRequest, graphqlUrl } from './support.ts';

const serverNow = Date.parse('2026-06-01T12:00:00Z');

async function signer() {
  const storage = new MemoryTokenStorage();
  const keyPair = await loadOrCreateDeviceKey(storage, globalThis.crypto);
  return { storage, keyPair, signer: await DpopSigner.create(keyPair, globalThis.crypto) };
}

async function verified(proof: string) {
  return jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] });
}

describe('DPoP proof', () => {
  it('verifies with the key in its jwk header', async () => {
    const { signer: dpop } = await signer();
    const proof = await dpop.proof({ method: 'post', url: 'https://api.example.com/graphql?op=me#x', serverNow });
    const { payload, protectedHeader } = await verified(proof);

    expect(protectedHeader.typ).toBe('dpop+jwt');
    expect(protectedHeader.alg).toBe('ES256');
    expect(Object.keys(protectedHeader.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(payload.htm).toBe('POST');
    expect(payload.htu).toBe('https://api.example.com/graphql');
    expect(payload.iat).toBe(serverNow / 1000);
    expect(payload.ath).toBeUndefined();
  });

  it('carries ath for an access token', async () => {
    const { signer: dpop } = await signer();
    const proof = await dpop.proof({ method: 'POST', url: graphqlUrl, serverNow, accessToken: 'eyJ.example.token' });
    const { payload } = await verified(proof);

    expect(payload.ath).toBe(createHash('sha256').update('eyJ.example.token').digest('base64url'));
  });

  it('uses a new jti for every proof', async () => {
    const { signer: dpop } = await signer();
    const proofs = await Promise.all(Array.from({ length: 20 }, () => dpop.proof({ method: 'POST', url: graphqlUrl, serverNow })));
    const ids = await Promise.all(proofs.map(async (proof) => (await verified(proof)).payload.jti));

    expect(new Set(ids).size).toBe(20);
    expect(ids.every((id) => typeof id === 'string' && id.length >= 22)).toBe(true);
  });

  it('carries the server nonce when given one', async () => {
    const { signer: dpop } = await signer();
    const { payload } = await verified(await dpop.proof({ method: 'POST', url: graphqlUrl, serverNow, nonce: 'n-1' }));

    expect(payload.nonce).toBe('n-1');
  });

  it('keeps the private key non-extractable', async () => {
    const { keyPair } = await signer();

    expect(keyPair.privateKey.extractable).toBe(false);
    await expect(globalThis.crypto.subtle.exportKey('jwk', keyPair.privateKey)).rejects.toThrow();
  });

  it('reuses the stored device key', async () => {
    const { storage, keyPair } = await signer();

    expect(await loadOrCreateDeviceKey(storage, globalThis.crypto)).toBe(keyPair);
  });
});

describe('client DPoP use', () => {
  async function keyBoundClient(clockOffsetMs: number) {
    const time = new VirtualTime(serverNow);
    const server = new ScriptedServer(time);
    const rig = createClient(time, server.fetch, { backgroundRefresh: false, clockOffsetMs });
    await loadOrCreateDeviceKey(rig.storage, globalThis.crypto);
    server.tokenType = 'DPoP';
    await server.signIn(rig.storage, clockOffsetMs);
    return { time, server, ...rig };
  }

  it('signs resource requests with ath and the DPoP scheme', async () => {
    const { time, server, client } = await keyBoundClient(0);

    await time.drive(client.fetch(graphqlUrl, graphqlRequest('{ me { id } }')));
    const request = server.received[0];
    const { payload } = await verified(request?.dpop as string);

    expect(request?.authorization).toBe('DPoP access-0');
    expect(payload.ath).toBe(createHash('sha256').update('access-0').digest('base64url'));
  });

  it('signs refresh requests without ath', async () => {
    const { time, server, client } = await keyBoundClient(0);

    await time.drive(client.refresh());
    const refresh = server.requests('TollgateRefreshSession')[0];
    const { payload } = await verified(refresh?.dpop as string);

    expect(payload.ath).toBeUndefined();
    expect(payload.htm).toBe('POST');
  });

  it('dates proofs on the server clock', async () => {
    const { time, server, client } = await keyBoundClient(9 * 3600_000);

    await time.drive(client.fetch(graphqlUrl, graphqlRequest('{ me { id } }')));
    const { payload } = await verified(server.received[0]?.dpop as string);

    expect(server.received).toHaveLength(1);
    expect(Math.abs((payload.iat as number) - time.now() / 1000)).toBeLessThanOrEqual(2);
  });

  it('proves a new device key at sign-in', async () => {
    const { signer: dpop } = await signer();
    const header = decodeProtectedHeader(await dpop.proof({ method: 'POST', url: graphqlUrl, serverNow }));

    expect(header.jwk).toEqual(dpop.publicJwk);
  });
});
