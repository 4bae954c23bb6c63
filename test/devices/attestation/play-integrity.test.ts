import { generateKeyPairSync, randomBytes } from 'node:crypto';

import { beforeAll, describe, expect, it } from 'vitest';

import { ManualClock } from '../../../src/clock.ts';
import { PlayIntegrityVerifier, type AttestationVerdict } from '../../../src/devices/attestation/index.ts';
import { createPlayIntegrityKeys, integrityPayload, integrityToken, testPackageName, type PlayIntegrityKeys } from './fixtures.ts';

const now = new Date('2026-12-01T12:00:00Z');
const challenge = randomBytes(32).toString('base64url');
const expected = { challenge, validitySeconds: 3600 };

let keys: PlayIntegrityKeys;
let verifier: PlayIntegrityVerifier;

type Payload = ReturnType<typeof integrityPayload>;

function payload(change: (value: Payload) => void = () => {}): Payload {
  const value = integrityPayload(challenge, now, keys.certificateDigest);
  change(value);
  return value;
}

async function verify(value: unknown): Promise<AttestationVerdict> {
  return verifier.verify({ kind: 'PLAY_INTEGRITY', challenge, payload: await integrityToken(value, keys) }, expected);
}

function reasonOf(verdict: AttestationVerdict): string | undefined {
  return verdict.passed ? undefined : verdict.reason;
}

beforeAll(() => {
  keys = createPlayIntegrityKeys();
  verifier = new PlayIntegrityVerifier(
    {
      packageName: testPackageName,
      decryptionKey: keys.decryptionKey,
      verificationKey: keys.verificationKey,
      certificateDigests: [keys.certificateDigest],
      timestampWindowSeconds: 120,
      clockSkewSeconds: 30,
    },
    new ManualClock(now),
  );
});

describe('Play Integrity verifier', () => {
  it('passes a recognised app on a device with integrity', async () => {
    const verdict = await verify(payload());

    expect(verdict.passed).toBe(true);
    expect(verdict.signals).toEqual([]);
    if (!verdict.passed) return;
    expect(verdict.expiresAt.toISOString()).toBe('2026-12-01T13:00:00.000Z');
  });

  it('accepts the challenge echoed in requestHash', async () => {
    const verdict = await verify(
      payload((value) => {
        const details = value.requestDetails as Record<string, unknown>;
        delete details.nonce;
        details.requestHash = challenge;
      }),
    );

    expect(verdict.passed).toBe(true);
  });

  it('rejects a token encrypted with another key', async () => {
    const token = await integrityToken(payload(), { signingKey: keys.signingKey, decryptionKey: new Uint8Array(randomBytes(32)) });
    const verdict = await verifier.verify({ kind: 'PLAY_INTEGRITY', challenge, payload: token }, expected);

    expect(reasonOf(verdict)).toBe('token_decryption_failed');
  });

  it('rejects a token that is not a JWE', async () => {
    const verdict = await verifier.verify({ kind: 'PLAY_INTEGRITY', challenge, payload: 'a.b.c.d.e' }, expected);

    expect(reasonOf(verdict)).toBe('token_decryption_failed');
  });

  it('rejects a verdict signed with another key', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const token = await integrityToken(payload(), { signingKey: other, decryptionKey: keys.decryptionKey });
    const verdict = await verifier.verify({ kind: 'PLAY_INTEGRITY', challenge, payload: token }, expected);

    expect(reasonOf(verdict)).toBe('token_signature_invalid');
  });

  it('rejects a payload that is not a verdict', async () => {
    expect(reasonOf(await verify('not json'))).toBe('malformed_verdict');
    expect(reasonOf(await verify({ requestDetails: {} }))).toBe('malformed_verdict');
  });

  it('rejects an unknown app recognition verdict', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity.appRecognitionVerdict = 'SOMETHING_NEW')));

    expect(reasonOf(verdict)).toBe('malformed_verdict');
  });

  it('rejects another nonce', async () => {
    const verdict = await verify(payload((value) => (value.requestDetails.nonce = randomBytes(32).toString('base64url'))));

    expect(reasonOf(verdict)).toBe('nonce_mismatch');
  });

  it('rejects a verdict without nonce or request hash', async () => {
    const verdict = await verify(payload((value) => delete (value.requestDetails as Record<string, unknown>).nonce));

    expect(reasonOf(verdict)).toBe('nonce_mismatch');
  });

  it('rejects another request package', async () => {
    const verdict = await verify(payload((value) => (value.requestDetails.requestPackageName = 'com.example.other')));

    expect(reasonOf(verdict)).toBe('request_package_mismatch');
  });

  it('rejects a timestamp older than the window', async () => {
    const verdict = await verify(payload((value) => (value.requestDetails.timestampMillis = String(now.getTime() - 121_000))));

    expect(reasonOf(verdict)).toBe('timestamp_too_old');
  });

  it('accepts a timestamp at the edge of the window', async () => {
    const verdict = await verify(payload((value) => (value.requestDetails.timestampMillis = String(now.getTime() - 120_000))));

    expect(verdict.passed).toBe(true);
  });

  it('rejects a timestamp beyond the clock skew', async () => {
    const verdict = await verify(payload((value) => (value.requestDetails.timestampMillis = String(now.getTime() + 31_000))));

    expect(reasonOf(verdict)).toBe('timestamp_in_future');
  });

  it('rejects an unevaluated app', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity = { appRecognitionVerdict: 'UNEVALUATED' } as Payload['appIntegrity'])));

    expect(reasonOf(verdict)).toBe('app_integrity_unevaluated');
  });

  it('passes an unrecognised version with its signal', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity.appRecognitionVerdict = 'UNRECOGNIZED_VERSION')));

    expect(verdict.passed).toBe(true);
    expect(verdict.signals).toEqual(['unrecognised_app']);
  });

  it('rejects another app package', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity.packageName = 'com.example.other')));

    expect(reasonOf(verdict)).toBe('app_package_mismatch');
  });

  it('rejects an unknown signing certificate', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity.certificateSha256Digest = [randomBytes(32).toString('base64url')])));

    expect(reasonOf(verdict)).toBe('certificate_digest_mismatch');
  });

  it('accepts a padded base64 certificate digest', async () => {
    const verdict = await verify(payload((value) => (value.appIntegrity.certificateSha256Digest = [keys.certificateDigest.toString('base64')])));

    expect(verdict.passed).toBe(true);
  });

  it('rejects a device without integrity verdicts', async () => {
    const verdict = await verify(payload((value) => (value.deviceIntegrity = {} as Payload['deviceIntegrity'])));

    expect(reasonOf(verdict)).toBe('device_integrity_missing');
  });

  it('rejects a device with only virtual integrity', async () => {
    const verdict = await verify(payload((value) => (value.deviceIntegrity.deviceRecognitionVerdict = ['MEETS_VIRTUAL_INTEGRITY'])));

    expect(reasonOf(verdict)).toBe('device_integrity_missing');
  });

  it('passes basic integrity only with its signal', async () => {
    const verdict = await verify(payload((value) => (value.deviceIntegrity.deviceRecognitionVerdict = ['MEETS_BASIC_INTEGRITY'])));

    expect(verdict.passed).toBe(true);
    expect(verdict.signals).toEqual(['basic_integrity_only']);
  });

  it('reports an unlicensed app', async () => {
    const verdict = await verify(payload((value) => (value.accountDetails.appLicensingVerdict = 'UNLICENSED')));

    expect(verdict.passed).toBe(true);
    expect(verdict.signals).toEqual(['unlicensed_app']);
  });
});
