import { X509Certificate } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { appleAppAttestationRootFingerprint, appleAppAttestationRootPem } from '../../../src/devices/attestation/index.ts';

const root = new X509Certificate(appleAppAttestationRootPem);

describe('Apple App Attestation root', () => {
  it('has the pinned fingerprint', () => {
    expect(root.fingerprint256).toBe(appleAppAttestationRootFingerprint);
  });

  it('is a self-signed CA', () => {
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
  });

  it('names Apple App Attestation Root CA', () => {
    expect(root.subject.split('\n')).toContain('CN=Apple App Attestation Root CA');
  });
});
