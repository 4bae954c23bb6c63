import { X509Certificate } from 'node:crypto';

import { beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, loadConfig } from '../../../src/config.ts';
import { appleAppAttestationRootFingerprint } from '../../../src/devices/attestation/index.ts';
import { createAppAttestPki, createPlayIntegrityKeys, testAppId, type AppAttestPki, type PlayIntegrityKeys } from './fixtures.ts';

let keys: PlayIntegrityKeys;
let pki: AppAttestPki;

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

beforeAll(async () => {
  keys = createPlayIntegrityKeys();
  pki = await createAppAttestPki(new Date());
});

describe('attestation configuration', () => {
  it('leaves both platforms off by default', () => {
    const { attestation } = loadConfig({});

    expect(attestation.playIntegrity).toBeUndefined();
    expect(attestation.appAttest).toBeUndefined();
    expect(attestation.challengeTtlSeconds).toBe(300);
    expect(attestation.validitySeconds).toBe(86_400);
  });

  it('reads the Play Integrity keys', () => {
    const settings = loadConfig(keys.env).attestation.playIntegrity;

    expect(settings?.packageName).toBe('com.example.tollgate');
    expect(Buffer.from(settings?.decryptionKey ?? []).equals(Buffer.from(keys.decryptionKey))).toBe(true);
    expect(settings?.verificationKey.equals(keys.verificationKey)).toBe(true);
    expect(settings?.certificateDigests[0]?.equals(keys.certificateDigest)).toBe(true);
    expect(settings?.timestampWindowSeconds).toBe(120);
  });

  it('reads certificate digests in base64url and colon hex', () => {
    const colonHex = keys.certificateDigest.toString('hex').replace(/(..)(?!$)/g, '$1:');
    const digests = `${keys.certificateDigest.toString('base64url')}, ${colonHex}`;
    const settings = loadConfig({ ...keys.env, TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS: digests }).attestation.playIntegrity;

    expect(settings?.certificateDigests.map((digest) => digest.equals(keys.certificateDigest))).toEqual([true, true]);
  });

  it('names the missing Play Integrity variables', () => {
    const problems = problemsOf({ TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME: 'com.example.tollgate' });

    expect(problems[0]).toContain('TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY');
    expect(problems[0]).toContain('TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS');
  });

  it('rejects a short decryption key', () => {
    const problems = problemsOf({ ...keys.env, TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY: Buffer.alloc(16).toString('base64') });

    expect(problems[0]).toMatch(/^TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY: .*16 bytes/);
  });

  it('rejects a verification key that is not a key', () => {
    const problems = problemsOf({ ...keys.env, TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY: 'bm90IGEga2V5' });

    expect(problems[0]).toMatch(/^TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY: /);
  });

  it('rejects a malformed certificate digest', () => {
    const problems = problemsOf({ ...keys.env, TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS: 'abc' });

    expect(problems[0]).toMatch(/^TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS: /);
  });

  it('trusts the Apple root unless overridden', () => {
    const settings = loadConfig({ TOLLGATE_APP_ATTEST_APP_ID: testAppId }).attestation.appAttest;

    expect(settings?.trustAnchors[0]?.fingerprint256).toBe(appleAppAttestationRootFingerprint);
    expect(settings?.allowDevelopment).toBe(false);
  });

  it('takes a root override in PEM or base64 DER', () => {
    const fromPem = loadConfig({ TOLLGATE_APP_ATTEST_APP_ID: testAppId, TOLLGATE_APP_ATTEST_ROOT_CERTIFICATE: pki.rootPem }).attestation.appAttest;
    const der = new X509Certificate(pki.rootPem).raw.toString('base64');
    const fromDer = loadConfig({ TOLLGATE_APP_ATTEST_APP_ID: testAppId, TOLLGATE_APP_ATTEST_ROOT_CERTIFICATE: der }).attestation.appAttest;

    expect(fromPem?.trustAnchors[0]?.fingerprint256).toBe(pki.root.fingerprint256);
    expect(fromDer?.trustAnchors[0]?.fingerprint256).toBe(pki.root.fingerprint256);
  });

  it('rejects an App ID without team identifier', () => {
    const problems = problemsOf({ TOLLGATE_APP_ATTEST_APP_ID: 'com.example.tollgate' });

    expect(problems[0]).toMatch(/^TOLLGATE_APP_ATTEST_APP_ID: /);
  });

  it('reads the development flag', () => {
    const settings = loadConfig({ TOLLGATE_APP_ATTEST_APP_ID: testAppId, TOLLGATE_APP_ATTEST_ALLOW_DEVELOPMENT: 'true' }).attestation.appAttest;

    expect(settings?.allowDevelopment).toBe(true);
  });
});
