import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

import { encode } from 'cborg';
import { beforeAll, describe, expect, it } from 'vitest';

import { verifyAppAttestAssertion, type AppAttestAssertionVerdict } from '../../../src/devices/attestation/index.ts';
import { authenticatorData, buildAssertion, testAppId } from './fixtures.ts';

const clientData = Buffer.from(randomBytes(32).toString('base64url'), 'utf8');

let privateKey: KeyObject;
let publicKey: Buffer;

function check(assertion: string, previousCounter = 0): AppAttestAssertionVerdict {
  return verifyAppAttestAssertion({ assertion, clientData, publicKey, previousCounter, appId: testAppId });
}

function reasonOf(verdict: AppAttestAssertionVerdict): string | undefined {
  return verdict.passed ? undefined : verdict.reason;
}

beforeAll(() => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  privateKey = pair.privateKey;
  publicKey = pair.publicKey.export({ format: 'der', type: 'spki' });
});

describe('App Attest assertion', () => {
  it('passes and returns the counter', () => {
    const verdict = check(buildAssertion(privateKey, { clientData, counter: 1 }));

    expect(verdict).toEqual({ passed: true, counter: 1 });
  });

  it('accepts a signature whose digest is the nonce', () => {
    const authData = authenticatorData({ appId: testAppId, counter: 1, flags: 0x01 });
    const signedData = Buffer.concat([authData, createHash('sha256').update(clientData).digest()]);
    const signature = sign('sha256', signedData, privateKey);

    expect(check(buildAssertion(privateKey, { clientData, counter: 1, signature })).passed).toBe(true);
  });

  it('rejects bytes that are not an assertion', () => {
    expect(reasonOf(check(Buffer.from(encode({ signature: 'x' })).toString('base64')))).toBe('malformed_assertion');
  });

  it('rejects short authenticator data', () => {
    const assertion = Buffer.from(encode({ signature: new Uint8Array(8), authenticatorData: new Uint8Array(10) })).toString('base64');

    expect(reasonOf(check(assertion))).toBe('malformed_assertion');
  });

  it('rejects a signature by another key', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

    expect(reasonOf(check(buildAssertion(other, { clientData, counter: 1 })))).toBe('assertion_signature_invalid');
  });

  it('rejects a signature over other client data', () => {
    const assertion = buildAssertion(privateKey, { clientData: Buffer.from('other'), counter: 1 });

    expect(reasonOf(check(assertion))).toBe('assertion_signature_invalid');
  });

  it('rejects another App ID', () => {
    const assertion = buildAssertion(privateKey, { clientData, counter: 1, appId: 'ABCDE12345.com.example.other' });

    expect(reasonOf(check(assertion))).toBe('app_id_mismatch');
  });

  it('rejects a counter equal to the stored one', () => {
    expect(reasonOf(check(buildAssertion(privateKey, { clientData, counter: 5 }), 5))).toBe('counter_not_increasing');
  });

  it('rejects a counter below the stored one', () => {
    expect(reasonOf(check(buildAssertion(privateKey, { clientData, counter: 4 }), 5))).toBe('counter_not_increasing');
  });
});
