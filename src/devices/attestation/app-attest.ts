import { createHash, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';

import { decode } from 'cborg';
import { z } from 'zod';

import type { Clock } from '../../clock.ts';
import { parseAuthenticatorData } from './authenticator-data.ts';
import { checkCertificateChain } from './certificate-chain.ts';
import { appAttestNonce, appAttestNonceOid, certificateExtension } from './der.ts';
import { failed, type AttestationEvidence, type AttestationExpectation, type AttestationVerdict, type AttestationVerifier, type IntegritySignal } from './types.ts';

export interface AppAttestConfig {
  /** The App ID: team identifier, a dot, and bundle identifier (`ABCDE12345.com.example.app`). */
  appId: string;
  /** Accept keys from Apple's development environment (aaguid `appattestdevelop`). */
  allowDevelopment: boolean;
  /** Root certificates a credential certificate chain must lead to. */
  trustAnchors: X509Certificate[];
}

/** aaguid of production keys: "appattest" followed by seven zero bytes. */
const productionAaguid = Buffer.concat([Buffer.from('appattest', 'ascii'), Buffer.alloc(7)]);
const developmentAaguid = Buffer.from('appattestdevelop', 'ascii');

const bytes = z.instanceof(Uint8Array);

const attestationObjectSchema = z.object({
  fmt: z.literal('apple-appattest'),
  attStmt: z.object({
    x5c: z.array(bytes).min(2).max(5),
    // NOTE: the receipt (for Apple's fraud metric service) is required by the format but neither
    // verified nor stored here.
    receipt: bytes,
  }),
  authData: bytes,
});

export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

export function equalBytes(left: Uint8Array, right: Uint8Array): boolean {
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}

/** Returns the uncompressed point (0x04 || x || y) of a P-256 public key, or undefined for another key. */
export function uncompressedPoint(key: KeyObject): Buffer | undefined {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return undefined;
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x || !jwk.y) return undefined;
  return Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
}

function decodeAttestationObject(payload: string): unknown {
  try {
    return decode(Buffer.from(payload, 'base64'));
  } catch {
    return undefined;
  }
}

function parseCertificates(chain: Uint8Array[]): X509Certificate[] | undefined {
  try {
    return chain.map((der) => new X509Certificate(der));
  } catch {
    return undefined;
  }
}

/**
 * Verifies an Apple App Attest attestation object, following the steps of Apple's "Validating apps
 * that connect to your server": credential certificate chain to the App Attestation root, nonce
 * extension, key identifier, RP ID hash, counter, aaguid and credential id.
 */
export class AppAttestVerifier implements AttestationVerifier {
  readonly kind = 'APP_ATTEST' as const;
  private readonly appIdHash: Buffer;

  constructor(
    private readonly config: AppAttestConfig,
    private readonly clock: Clock,
  ) {
    this.appIdHash = sha256(Buffer.from(config.appId, 'utf8'));
  }

  async verify(evidence: AttestationEvidence, expected: AttestationExpectation): Promise<AttestationVerdict> {
    const decoded = decodeAttestationObject(evidence.payload);
    if (typeof decoded !== 'object' || decoded === null) return failed(this.kind, 'malformed_attestation');
    if ('fmt' in decoded && decoded.fmt !== 'apple-appattest') return failed(this.kind, 'unsupported_format');
    const parsed = attestationObjectSchema.safeParse(decoded);
    if (!parsed.success) return failed(this.kind, 'malformed_attestation');
    const { attStmt, authData } = parsed.data;

    const chain = parseCertificates(attStmt.x5c);
    const authenticatorData = parseAuthenticatorData(authData);
    if (!chain || !authenticatorData?.attested) return failed(this.kind, 'malformed_attestation');
    const credentialCertificate = chain[0] as X509Certificate;

    const now = this.clock.now();
    const chainProblem = checkCertificateChain(chain, this.config.trustAnchors, now);
    if (chainProblem) return failed(this.kind, chainProblem);

    const extension = certificateExtension(credentialCertificate.raw, appAttestNonceOid);
    const certifiedNonce = extension ? appAttestNonce(extension) : undefined;
    if (!certifiedNonce) return failed(this.kind, 'nonce_extension_missing');
    const clientDataHash = sha256(Buffer.from(expected.challenge, 'utf8'));
    if (!equalBytes(certifiedNonce, sha256(authData, clientDataHash))) return failed(this.kind, 'nonce_mismatch');

    const publicKeyPoint = uncompressedPoint(credentialCertificate.publicKey);
    if (!publicKeyPoint) return failed(this.kind, 'malformed_attestation');
    const keyId = sha256(publicKeyPoint);
    if (!evidence.keyId || !equalBytes(Buffer.from(evidence.keyId, 'base64'), keyId)) return failed(this.kind, 'key_id_mismatch');

    if (!equalBytes(authenticatorData.rpIdHash, this.appIdHash)) return failed(this.kind, 'app_id_mismatch');
    if (authenticatorData.counter !== 0) return failed(this.kind, 'counter_not_zero');

    const signals: IntegritySignal[] = [];
    const { aaguid, credentialId } = authenticatorData.attested;
    if (equalBytes(aaguid, developmentAaguid)) {
      if (!this.config.allowDevelopment) return failed(this.kind, 'development_environment_rejected');
      signals.push('development_environment');
    } else if (!equalBytes(aaguid, productionAaguid)) {
      return failed(this.kind, 'unknown_aaguid');
    }

    if (!equalBytes(credentialId, keyId)) return failed(this.kind, 'credential_id_mismatch', signals);

    return {
      passed: true,
      kind: this.kind,
      signals,
      expiresAt: new Date(now.getTime() + expected.validitySeconds * 1000),
      appAttestKey: {
        keyId: keyId.toString('base64'),
        publicKey: credentialCertificate.publicKey.export({ format: 'der', type: 'spki' }),
        counter: 0,
      },
    };
  }
}
