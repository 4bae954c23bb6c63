import { createHash, randomBytes, X509Certificate } from 'node:crypto';

import { encode } from 'cborg';
import { beforeAll, describe, expect, it } from 'vitest';

import { ManualClock } from '../../../src/clock.ts';
import { AppAttestVerifier, appleAppAttestationRootPem, type AppAttestConfig, type AttestationVerdict } from '../../../src/devices/attestation/index.ts';
import { buildAttestation, createAppAttestPki, developmentAaguid, testAppId, type AppAttestPki, type AttestationOptions } from './fixtures.ts';

const now = new Date('2026-12-01T12:00:00Z');
const challenge = randomBytes(32).toString('base64url');
const expected = { challenge, validitySeconds: 3600 };

let pki: AppAttestPki;

function verifierWith(config: Partial<AppAttestConfig> = {}, at: Date = now): AppAttestVerifier {
  return new AppAttestVerifier({ appId: testAppId, allowDevelopment: false, trustAnchors: [pki.root], ...config }, new ManualClock(at));
}

async function verify(options: Partial<AttestationOptions> = {}, verifier = verifierWith()): Promise<AttestationVerdict> {
  const built = await buildAttestation(pki, { challenge, ...options });
  return verifier.verify({ kind: 'APP_ATTEST', challenge, payload: built.attestation, keyId: built.keyId }, expected);
}

function reasonOf(verdict: AttestationVerdict): string | undefined {
  return verdict.passed ? undefined : verdict.reason;
}

beforeAll(async () => {
  pki = await createAppAttestPki(now);
});

describe('App Attest verifier', () => {
  it('passes a valid attestation and returns the key', async () => {
    const built = await buildAttestation(pki, { challenge });
    const verdict = await verifierWith().verify({ kind: 'APP_ATTEST', challenge, payload: built.attestation, keyId: built.keyId }, expected);

    expect(verdict.passed).toBe(true);
    if (!verdict.passed) return;
    expect(verdict.appAttestKey?.keyId).toBe(built.keyId);
    expect(verdict.appAttestKey?.publicKey.equals(built.publicKeySpki)).toBe(true);
    expect(verdict.appAttestKey?.counter).toBe(0);
    expect(verdict.expiresAt.toISOString()).toBe('2026-12-01T13:00:00.000Z');
  });

  it('rejects bytes that are not CBOR', async () => {
    const verdict = await verifierWith().verify({ kind: 'APP_ATTEST', challenge, payload: Buffer.from([0xff, 0x00]).toString('base64'), keyId: 'AAAA' }, expected);

    expect(reasonOf(verdict)).toBe('malformed_attestation');
  });

  it('rejects an object without certificates', async () => {
    const payload = Buffer.from(encode({ fmt: 'apple-appattest', attStmt: {}, authData: new Uint8Array(37) })).toString('base64');
    const verdict = await verifierWith().verify({ kind: 'APP_ATTEST', challenge, payload, keyId: 'AAAA' }, expected);

    expect(reasonOf(verdict)).toBe('malformed_attestation');
  });

  it('rejects another attestation format', async () => {
    expect(reasonOf(await verify({ fmt: 'packed' }))).toBe('unsupported_format');
  });

  it('rejects a certificate signed outside the chain', async () => {
    expect(reasonOf(await verify({ rogueIssuer: true }))).toBe('certificate_chain_untrusted');
  });

  it('rejects a chain to another root', async () => {
    const verifier = verifierWith({ trustAnchors: [new X509Certificate(appleAppAttestationRootPem)] });

    expect(reasonOf(await verify({}, verifier))).toBe('certificate_chain_untrusted');
  });

  it('rejects an expired credential certificate', async () => {
    const verdict = await verify({ leafNotAfter: new Date(now.getTime() - 1000) });

    expect(reasonOf(verdict)).toBe('certificate_not_valid_now');
  });

  it('rejects a credential certificate not yet valid', async () => {
    const verdict = await verify({ leafNotBefore: new Date(now.getTime() + 60_000) });

    expect(reasonOf(verdict)).toBe('certificate_not_valid_now');
  });

  it('rejects a chain once the CA has expired', async () => {
    const verdict = await verify({}, verifierWith({}, new Date(pki.notAfter.getTime() + 1000)));

    expect(reasonOf(verdict)).toBe('certificate_not_valid_now');
  });

  it('rejects a certificate without the nonce extension', async () => {
    expect(reasonOf(await verify({ omitNonceExtension: true }))).toBe('nonce_extension_missing');
  });

  it('rejects a nonce for another challenge', async () => {
    expect(reasonOf(await verify({ challenge: randomBytes(32).toString('base64url') }))).toBe('nonce_mismatch');
  });

  it('rejects a tampered nonce', async () => {
    expect(reasonOf(await verify({ nonce: randomBytes(32) }))).toBe('nonce_mismatch');
  });

  it('rejects a key id of another key', async () => {
    const built = await buildAttestation(pki, { challenge });
    const keyId = createHash('sha256').update('another key').digest('base64');
    const verdict = await verifierWith().verify({ kind: 'APP_ATTEST', challenge, payload: built.attestation, keyId }, expected);

    expect(reasonOf(verdict)).toBe('key_id_mismatch');
  });

  it('rejects evidence without a key id', async () => {
    const built = await buildAttestation(pki, { challenge });
    const verdict = await verifierWith().verify({ kind: 'APP_ATTEST', challenge, payload: built.attestation }, expected);

    expect(reasonOf(verdict)).toBe('key_id_mismatch');
  });

  it('rejects another App ID', async () => {
    expect(reasonOf(await verify({ appId: 'ABCDE12345.com.example.other' }))).toBe('app_id_mismatch');
  });

  it('rejects a counter above zero', async () => {
    expect(reasonOf(await verify({ counter: 1 }))).toBe('counter_not_zero');
  });

  it('rejects an unknown aaguid', async () => {
    expect(reasonOf(await verify({ aaguid: Buffer.alloc(16) }))).toBe('unknown_aaguid');
  });

  it('rejects the development environment by default', async () => {
    expect(reasonOf(await verify({ aaguid: developmentAaguid }))).toBe('development_environment_rejected');
  });

  it('passes the development environment when allowed', async () => {
    const verdict = await verify({ aaguid: developmentAaguid }, verifierWith({ allowDevelopment: true }));

    expect(verdict.passed).toBe(true);
    expect(verdict.signals).toEqual(['development_environment']);
  });

  it('rejects a credential id that is not the key id', async () => {
    expect(reasonOf(await verify({ credentialId: randomBytes(32) }))).toBe('credential_id_mismatch');
  });
});
