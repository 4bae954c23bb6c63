import { createPublicKey, verify } from 'node:crypto';

import { decode } from 'cborg';
import { z } from 'zod';

import { equalBytes, sha256 } from './app-attest.ts';
import { parseAuthenticatorData } from './authenticator-data.ts';
import type { AttestationFailureReason } from './types.ts';

export interface AppAttestAssertionInput {
  /** The assertion from `generateAssertion`, base64: CBOR `{ signature, authenticatorData }`. */
  assertion: string;
  /** The exact bytes whose SHA-256 the app passed as clientDataHash. */
  clientData: Uint8Array;
  /** The attested key, DER-encoded SubjectPublicKeyInfo. */
  publicKey: Uint8Array;
  /** The highest counter accepted so far for this key. */
  previousCounter: number;
  appId: string;
}

export type AppAttestAssertionVerdict = { passed: true; counter: number } | { passed: false; reason: AttestationFailureReason };

const assertionSchema = z.object({
  signature: z.instanceof(Uint8Array),
  authenticatorData: z.instanceof(Uint8Array),
});

function decodeAssertion(assertion: string): z.infer<typeof assertionSchema> | undefined {
  try {
    const parsed = assertionSchema.safeParse(decode(Buffer.from(assertion, 'base64')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function verifiesOver(message: Uint8Array, input: AppAttestAssertionInput, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(input.publicKey), format: 'der', type: 'spki' });
    return verify('sha256', message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Verifies an App Attest assertion against the stored key. Pure: the caller stores the returned
 * counter, and must do so only if it is still above the stored one (a conditional update), so two
 * concurrent assertions with one counter cannot both pass.
 */
export function verifyAppAttestAssertion(input: AppAttestAssertionInput): AppAttestAssertionVerdict {
  const assertion = decodeAssertion(input.assertion);
  const authenticatorData = assertion ? parseAuthenticatorData(assertion.authenticatorData) : undefined;
  if (!assertion || !authenticatorData) return { passed: false, reason: 'malformed_assertion' };

  // Apple's guide requires a signature "valid for nonce", where nonce = SHA-256(authenticatorData
  // || clientDataHash). Deployed verifiers check ECDSA with SHA-256 over nonce as the message. A
  // signature over authenticatorData || clientDataHash (whose digest is nonce) is accepted too,
  // because both cover the same bytes and both need the attested private key.
  const signedData = Buffer.concat([assertion.authenticatorData, sha256(input.clientData)]);
  const nonce = sha256(signedData);
  if (!verifiesOver(nonce, input, assertion.signature) && !verifiesOver(signedData, input, assertion.signature)) {
    return { passed: false, reason: 'assertion_signature_invalid' };
  }

  if (!equalBytes(authenticatorData.rpIdHash, sha256(Buffer.from(input.appId, 'utf8')))) return { passed: false, reason: 'app_id_mismatch' };
  if (authenticatorData.counter <= input.previousCounter) return { passed: false, reason: 'counter_not_increasing' };

  return { passed: true, counter: authenticatorData.counter };
}
