import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';

import { z } from 'zod';

import { appleAppAttestationRootPem } from './apple-root.ts';

/** Attestation settings, validated once at start-up. A platform left unconfigured rejects its evidence. */
export interface AttestationConfig {
  challengeTtlSeconds: number;
  /** How long a passed attestation counts towards ATTESTED trust, in seconds. */
  validitySeconds: number;
  playIntegrity: PlayIntegritySettings | undefined;
  appAttest: AppAttestSettings | undefined;
}

export interface PlayIntegritySettings {
  packageName: string;
  decryptionKey: Uint8Array;
  verificationKey: KeyObject;
  certificateDigests: Buffer[];
  timestampWindowSeconds: number;
}

export interface AppAttestSettings {
  appId: string;
  allowDevelopment: boolean;
  /** The configured root, or Apple's App Attestation Root CA when none is configured. */
  trustAnchors: X509Certificate[];
}

function fail(context: z.RefinementCtx, message: string): typeof z.NEVER {
  context.addIssue({ code: 'custom', message });
  return z.NEVER;
}

const decryptionKey = z.string().transform((value, context) => {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32) return fail(context, `expected the 32-byte AES key from the Play Console in base64, got ${key.length} bytes`);
  return new Uint8Array(key);
});

const verificationKey = z.string().transform((value, context) => {
  try {
    const key = createPublicKey({ key: Buffer.from(value, 'base64'), format: 'der', type: 'spki' });
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return fail(context, 'expected an EC P-256 public key');
    return key;
  } catch {
    return fail(context, 'expected the EC public key from the Play Console: DER SubjectPublicKeyInfo in base64');
  }
});

/** Parses a SHA-256 digest written in hex (colons allowed), base64 or base64url. */
function parseDigest(text: string): Buffer | undefined {
  const hex = text.replace(/:/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

const certificateDigests = z.string().transform((value, context) => {
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  const digests = entries.map(parseDigest);
  if (entries.length === 0 || digests.some((digest) => digest === undefined)) {
    return fail(context, 'expected comma-separated SHA-256 digests of the app signing certificate, in hex or base64url');
  }
  return digests as Buffer[];
});

const rootCertificate = z.string().transform((value, context) => {
  try {
    const source = value.includes('-----BEGIN') ? value : Buffer.from(value, 'base64');
    const certificate = new X509Certificate(source);
    if (!certificate.ca) return fail(context, 'the certificate is not a CA certificate');
    return certificate;
  } catch {
    return fail(context, 'expected a PEM certificate or a DER certificate in base64');
  }
});

const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

export const attestationEnvShape = {
  TOLLGATE_ATTESTATION_CHALLENGE_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(300),
  TOLLGATE_ATTESTATION_VALIDITY_SECONDS: z.coerce.number().int().min(60).default(24 * 3600),
  TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$/, 'expected an Android application id such as com.example.app').optional(),
  TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY: decryptionKey.optional(),
  TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY: verificationKey.optional(),
  TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS: certificateDigests.optional(),
  TOLLGATE_PLAY_INTEGRITY_TIMESTAMP_WINDOW_SECONDS: z.coerce.number().int().min(10).max(3600).default(120),
  TOLLGATE_APP_ATTEST_APP_ID: z.string().regex(/^[A-Z0-9]{10}\.[A-Za-z0-9][A-Za-z0-9.-]*$/, 'expected the team identifier, a dot and the bundle identifier, e.g. ABCDE12345.com.example.app').optional(),
  TOLLGATE_APP_ATTEST_ALLOW_DEVELOPMENT: flag.default(false),
  TOLLGATE_APP_ATTEST_ROOT_CERTIFICATE: rootCertificate.optional(),
};

const attestationEnvSchema = z.object(attestationEnvShape);
export type AttestationEnv = z.output<typeof attestationEnvSchema>;

const playIntegrityVariables = [
  'TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME',
  'TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY',
  'TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY',
  'TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS',
] as const;

/** Builds the attestation settings from parsed variables; returns the problems of partial configuration. */
export function attestationConfigFrom(env: AttestationEnv): { config: AttestationConfig; problems: string[] } {
  const problems: string[] = [];

  const present = playIntegrityVariables.filter((name) => env[name] !== undefined);
  if (present.length > 0 && present.length < playIntegrityVariables.length) {
    const missing = playIntegrityVariables.filter((name) => env[name] === undefined);
    problems.push(`${missing.join(', ')}: required when ${present.join(', ')} ${present.length === 1 ? 'is' : 'are'} set, to verify Play Integrity tokens`);
  }

  const playIntegrity =
    env.TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME && env.TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY && env.TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY && env.TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS
      ? {
          packageName: env.TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME,
          decryptionKey: env.TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY,
          verificationKey: env.TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY,
          certificateDigests: env.TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS,
          timestampWindowSeconds: env.TOLLGATE_PLAY_INTEGRITY_TIMESTAMP_WINDOW_SECONDS,
        }
      : undefined;

  const appAttest = env.TOLLGATE_APP_ATTEST_APP_ID
    ? {
        appId: env.TOLLGATE_APP_ATTEST_APP_ID,
        allowDevelopment: env.TOLLGATE_APP_ATTEST_ALLOW_DEVELOPMENT,
        trustAnchors: [env.TOLLGATE_APP_ATTEST_ROOT_CERTIFICATE ?? new X509Certificate(appleAppAttestationRootPem)],
      }
    : undefined;

  return {
    config: {
      challengeTtlSeconds: env.TOLLGATE_ATTESTATION_CHALLENGE_TTL_SECONDS,
      validitySeconds: env.TOLLGATE_ATTESTATION_VALIDITY_SECONDS,
      playIntegrity,
      appAttest,
    },
    problems,
  };
}
