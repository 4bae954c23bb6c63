import { randomBytes } from 'node:crypto';

import * as asn1js from 'asn1js';
import { describe, expect, it } from 'vitest';

import { appAttestNonce } from '../../../src/devices/attestation/der.ts';
import { nonceExtensionValue } from './fixtures.ts';

describe('App Attest nonce extension', () => {
  it('reads the tagged octet string', () => {
    const nonce = randomBytes(32);

    expect(Buffer.from(appAttestNonce(new Uint8Array(nonceExtensionValue(nonce))) ?? []).equals(nonce)).toBe(true);
  });

  it('rejects an untagged octet string', () => {
    const der = new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: randomBytes(32) })] }).toBER();

    expect(appAttestNonce(new Uint8Array(der))).toBeUndefined();
  });

  it('rejects trailing bytes', () => {
    const der = Buffer.concat([Buffer.from(nonceExtensionValue(randomBytes(32))), Buffer.from([0x00])]);

    expect(appAttestNonce(der)).toBeUndefined();
  });

  it('rejects garbage', () => {
    expect(appAttestNonce(new Uint8Array([0x30, 0x05, 0x01]))).toBeUndefined();
  });
});
