import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDeviceKey, dpopGraphql, signProof, signUpWithKey, type DeviceKey, type KeyBoundUser } from '../helpers/dpop.ts';
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

async function reasonFor(dpop: string): Promise<unknown> {
  const response = await dpopGraphql(gateway, key, user.accessToken, '{ me { id } }', { dpop });
  expect(response.body.errors?.[0]?.extensions?.code).toBe('DPOP_PROOF_INVALID');
  return response.body.errors?.[0]?.extensions?.reason;
}

describe('DPoP proof signature', () => {
  it('rejects a crit header', async () => {
    // jose will not sign an unknown crit member, so this proof is signed with WebCrypto directly.
    const valid = await signProof(gateway, key, { accessToken: user.accessToken });
    const header = { alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, crit: ['x-tollgate-test'], 'x-tollgate-test': true };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${valid.split('.')[1]}`;
    const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, Buffer.from(input));

    expect(await reasonFor(`${input}.${Buffer.from(signature).toString('base64url')}`)).toBe('malformed');
  });

  it('rejects a truncated signature', async () => {
    const proof = await signProof(gateway, key, { accessToken: user.accessToken });
    const [header, payload, signature] = proof.split('.') as [string, string, string];

    expect(await reasonFor(`${header}.${payload}.${signature.slice(0, -4)}`)).toBe('bad_signature');
  });

  it('rejects a payload changed after signing', async () => {
    const proof = await signProof(gateway, key, { accessToken: user.accessToken });
    const [header, , signature] = proof.split('.') as [string, string, string];
    const other = await signProof(gateway, key, { accessToken: user.accessToken, htm: 'GET' });

    expect(await reasonFor(`${header}.${other.split('.')[1]}.${signature}`)).toBe('bad_signature');
  });
});
