import { timingSafeEqual, type KeyObject } from 'node:crypto';

import { compactDecrypt, compactVerify } from 'jose';
import { z } from 'zod';

import type { Clock } from '../../clock.ts';
import { failed, type AttestationEvidence, type AttestationExpectation, type AttestationVerdict, type AttestationVerifier, type IntegritySignal } from './types.ts';

export interface PlayIntegrityConfig {
  /** The Android application id the verdict must name. */
  packageName: string;
  /** The app's AES-256 response decryption key from the Play Console (32 bytes). */
  decryptionKey: Uint8Array;
  /** The app's EC P-256 response verification key from the Play Console. */
  verificationKey: KeyObject;
  /** SHA-256 digests of the app signing certificates that may have signed the app. */
  certificateDigests: Buffer[];
  /** Maximum age of the verdict's `requestDetails.timestampMillis`, in seconds. */
  timestampWindowSeconds: number;
  /** Tolerated clock difference for a verdict timestamp ahead of the gateway's clock, in seconds. */
  clockSkewSeconds: number;
}

// The verdict payload as documented for standard and classic requests. Unknown members are ignored
// because Google adds fields over time; an unknown appRecognitionVerdict is rejected.
const verdictSchema = z.object({
  requestDetails: z.object({
    requestPackageName: z.string(),
    nonce: z.string().optional(),
    requestHash: z.string().optional(),
    timestampMillis: z.union([z.string().regex(/^\d{1,16}$/), z.number().int().nonnegative()]).transform(Number),
  }),
  appIntegrity: z.object({
    appRecognitionVerdict: z.enum(['PLAY_RECOGNIZED', 'UNRECOGNIZED_VERSION', 'UNEVALUATED']),
    packageName: z.string().optional(),
    certificateSha256Digest: z.array(z.string()).optional(),
  }),
  deviceIntegrity: z.object({
    deviceRecognitionVerdict: z.array(z.string()).optional(),
  }),
  accountDetails: z.object({ appLicensingVerdict: z.string().optional() }).optional(),
});

type PlayIntegrityPayload = z.infer<typeof verdictSchema>;

/** Rewrites base64 or base64url text to unpadded base64url, so both spellings of one value compare equal. */
function normaliseBase64(value: string): string {
  return value.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function equalText(left: string, right: string): boolean {
  const a = Buffer.from(left, 'utf8');
  const b = Buffer.from(right, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Verifies a Google Play Integrity token locally. It decrypts the JWE (A256KW, A256GCM) with the
 * app's decryption key and verifies the inner JWS (ES256) with the app's verification key. Then it
 * checks the verdict against the challenge, the app's identity and the device's integrity.
 */
export class PlayIntegrityVerifier implements AttestationVerifier {
  readonly kind = 'PLAY_INTEGRITY' as const;

  constructor(
    private readonly config: PlayIntegrityConfig,
    private readonly clock: Clock,
  ) {}

  async verify(evidence: AttestationEvidence, expected: AttestationExpectation): Promise<AttestationVerdict> {
    let jws: string;
    try {
      const decrypted = await compactDecrypt(evidence.payload, this.config.decryptionKey, {
        keyManagementAlgorithms: ['A256KW'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      jws = new TextDecoder().decode(decrypted.plaintext);
    } catch {
      return failed(this.kind, 'token_decryption_failed');
    }

    let payloadBytes: Uint8Array;
    try {
      payloadBytes = (await compactVerify(jws, this.config.verificationKey, { algorithms: ['ES256'] })).payload;
    } catch {
      return failed(this.kind, 'token_signature_invalid');
    }

    let payload: PlayIntegrityPayload;
    try {
      payload = verdictSchema.parse(JSON.parse(new TextDecoder().decode(payloadBytes)));
    } catch {
      return failed(this.kind, 'malformed_verdict');
    }

    return this.checkPayload(payload, expected);
  }

  /** Checks a verified payload. Request details come first, as Google's verdict guide requires. */
  private checkPayload(payload: PlayIntegrityPayload, expected: AttestationExpectation): AttestationVerdict {
    const { requestDetails, appIntegrity, deviceIntegrity } = payload;
    const signals: IntegritySignal[] = [];

    // Classic requests echo the nonce, standard requests the requestHash; either carries the challenge.
    const echoed = requestDetails.nonce ?? requestDetails.requestHash;
    if (echoed === undefined || !equalText(normaliseBase64(echoed), normaliseBase64(expected.challenge))) {
      return failed(this.kind, 'nonce_mismatch');
    }
    if (requestDetails.requestPackageName !== this.config.packageName) {
      return failed(this.kind, 'request_package_mismatch');
    }

    const nowMillis = this.clock.now().getTime();
    if (nowMillis - requestDetails.timestampMillis > this.config.timestampWindowSeconds * 1000) {
      return failed(this.kind, 'timestamp_too_old');
    }
    if (requestDetails.timestampMillis - nowMillis > this.config.clockSkewSeconds * 1000) {
      return failed(this.kind, 'timestamp_in_future');
    }

    // UNEVALUATED verdicts carry no package name or certificate digest to check.
    if (appIntegrity.appRecognitionVerdict === 'UNEVALUATED') {
      return failed(this.kind, 'app_integrity_unevaluated');
    }
    if (appIntegrity.appRecognitionVerdict === 'UNRECOGNIZED_VERSION') signals.push('unrecognised_app');
    if (appIntegrity.packageName !== this.config.packageName) {
      return failed(this.kind, 'app_package_mismatch', signals);
    }
    if (!this.hasConfiguredDigest(appIntegrity.certificateSha256Digest ?? [])) {
      return failed(this.kind, 'certificate_digest_mismatch', signals);
    }

    const deviceVerdicts = deviceIntegrity.deviceRecognitionVerdict ?? [];
    if (!deviceVerdicts.includes('MEETS_DEVICE_INTEGRITY')) {
      if (!deviceVerdicts.includes('MEETS_BASIC_INTEGRITY')) return failed(this.kind, 'device_integrity_missing', signals);
      signals.push('basic_integrity_only');
    }

    if (payload.accountDetails?.appLicensingVerdict === 'UNLICENSED') signals.push('unlicensed_app');

    const expiresAt = new Date(nowMillis + expected.validitySeconds * 1000);
    return { passed: true, kind: this.kind, signals, expiresAt };
  }

  private hasConfiguredDigest(digests: string[]): boolean {
    return digests.some((digest) => {
      const bytes = Buffer.from(normaliseBase64(digest), 'base64url');
      return this.config.certificateDigests.some((configured) => configured.length === bytes.length && timingSafeEqual(configured, bytes));
    });
  }
}
