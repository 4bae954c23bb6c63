export const attestationKinds = ['PLAY_INTEGRITY', 'APP_ATTEST'] as const;
export type AttestationKind = (typeof attestationKinds)[number];

/**
 * Integrity findings a verifier reports about a device or app. src/devices/trust.ts decides which
 * of them keep a device below ATTESTED even when its verdict is authentic.
 */
export type IntegritySignal =
  /** Play Integrity: Google Play does not recognise this version of the app (UNRECOGNIZED_VERSION). */
  | 'unrecognised_app'
  /** Play Integrity: MEETS_BASIC_INTEGRITY without MEETS_DEVICE_INTEGRITY, e.g. rooted or uncertified. */
  | 'basic_integrity_only'
  /** Play Integrity: Google Play reports the user has no license for the app. */
  | 'unlicensed_app'
  /** App Attest: the key comes from Apple's development environment. */
  | 'development_environment';

/** The reason a verification failed. Each failed check has its own reason. */
export type AttestationFailureReason =
  // Play Integrity
  | 'token_decryption_failed'
  | 'token_signature_invalid'
  | 'malformed_verdict'
  | 'nonce_mismatch'
  | 'request_package_mismatch'
  | 'app_integrity_unevaluated'
  | 'app_package_mismatch'
  | 'certificate_digest_mismatch'
  | 'device_integrity_missing'
  | 'timestamp_too_old'
  | 'timestamp_in_future'
  // App Attest attestation
  | 'malformed_attestation'
  | 'unsupported_format'
  | 'certificate_chain_untrusted'
  | 'certificate_not_valid_now'
  | 'nonce_extension_missing'
  | 'app_id_mismatch'
  | 'counter_not_zero'
  | 'unknown_aaguid'
  | 'development_environment_rejected'
  | 'credential_id_mismatch'
  | 'key_id_mismatch'
  // App Attest assertion
  | 'malformed_assertion'
  | 'device_not_attested'
  | 'assertion_signature_invalid'
  | 'counter_not_increasing'
  // Challenge, checked before any verifier runs
  | 'challenge_unknown'
  | 'challenge_expired'
  | 'challenge_reused'
  | 'challenge_wrong_device';

/** Platform evidence a device submits for a challenge this gateway issued. */
export interface AttestationEvidence {
  kind: AttestationKind;
  /** The challenge string returned by `attestationChallenge`. */
  challenge: string;
  /** PLAY_INTEGRITY: the integrity token (JWE). APP_ATTEST: the attestation object, base64. */
  payload: string;
  /** APP_ATTEST: the key identifier from `generateKey`, base64. */
  keyId?: string | undefined;
}

/** Server-side values the evidence must match, fixed before verification. */
export interface AttestationExpectation {
  /** The challenge the gateway issued and has just consumed. */
  challenge: string;
  /** How long a passed attestation stays valid, in seconds. */
  validitySeconds: number;
}

/** The App Attest key a device proved it holds, stored for later assertions. */
export interface AppAttestKey {
  /** SHA-256 of the uncompressed public key point, base64 (the key identifier Apple returns). */
  keyId: string;
  /** The public key, DER-encoded SubjectPublicKeyInfo. */
  publicKey: Buffer;
  counter: number;
}

export type AttestationVerdict =
  | {
      passed: true;
      kind: AttestationKind;
      signals: IntegritySignal[];
      /** When the attestation stops counting: the verification time plus the configured validity. */
      expiresAt: Date;
      appAttestKey?: AppAttestKey;
    }
  | {
      passed: false;
      kind: AttestationKind;
      reason: AttestationFailureReason;
      signals: IntegritySignal[];
    };

/** One platform's attestation check. Pure: no database, time from the injected clock. */
export interface AttestationVerifier {
  readonly kind: AttestationKind;
  verify(evidence: AttestationEvidence, expected: AttestationExpectation): Promise<AttestationVerdict>;
}

export function failed(kind: AttestationKind, reason: AttestationFailureReason, signals: IntegritySignal[] = []): AttestationVerdict {
  return { passed: false, kind, reason, signals };
}
