import { z } from 'zod';

import { trustLevels, type DeviceTrust } from '../authz/principal.ts';

/**
 * Environment variables for DPoP proofs, device trust and trust-dependent session lifetimes. The
 * shape is spread into the gateway's environment schema, so every bad value is reported at start-up
 * together with the others.
 */

const day = 24 * 3600;
const seconds = (min: number) => z.coerce.number().int().min(min);

const perLevelLifetimes = Object.fromEntries(
  trustLevels.flatMap((level) => [
    [`TOLLGATE_SESSION_IDLE_SECONDS_${level}`, seconds(60).optional()],
    [`TOLLGATE_SESSION_ABSOLUTE_SECONDS_${level}`, seconds(60).optional()],
  ]),
) as Record<`TOLLGATE_SESSION_${'IDLE' | 'ABSOLUTE'}_SECONDS_${DeviceTrust}`, z.ZodOptional<z.ZodCoercedNumber<unknown>>>;

export const deviceEnvShape = {
  /** Public base URL apps call; DPoP `htu` claims are compared with it plus the request path. */
  TOLLGATE_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  TOLLGATE_DPOP_MAX_AGE_SECONDS: seconds(1).max(600).default(60),
  TOLLGATE_DPOP_MAX_FUTURE_SECONDS: seconds(0).max(300).default(10),
  TOLLGATE_DPOP_NONCE_REQUIRED: z.stringbool().default(false),
  TOLLGATE_DPOP_KEY_CACHE_SIZE: seconds(0).default(10_000),
  TOLLGATE_REFRESH_DEVICE_MISMATCH_REVOKES: z.stringbool().default(false),
  TOLLGATE_DEVICE_TRUSTED_AFTER_SECONDS: seconds(0).default(7 * day),
  ...perLevelLifetimes,
};

type DeviceEnv = z.output<z.ZodObject<typeof deviceEnvShape>> & {
  TOLLGATE_ISSUER: string;
  TOLLGATE_SESSION_IDLE_SECONDS: number;
  TOLLGATE_SESSION_ABSOLUTE_SECONDS: number;
};

export interface SessionLifetime {
  idleSeconds: number;
  absoluteSeconds: number;
}

export interface DpopConfig {
  /** Normalised public base URL, without a trailing slash. */
  publicUrl: string;
  /** Oldest accepted proof `iat`, in seconds before now. */
  maxAgeSeconds: number;
  /** Newest accepted proof `iat`, in seconds after now. */
  maxFutureSeconds: number;
  /** Whether proofs must carry a server nonce (RFC 9449 §8). */
  nonceRequired: boolean;
  /** Maximum number of imported proof keys kept in memory; 0 turns the cache off. */
  keyCacheSize: number;
}

export interface DeviceConfig {
  dpop: DpopConfig;
  /** Whether a refresh from the wrong device key also revokes the session. */
  refreshMismatchRevokes: boolean;
  /** Seconds a confirmed, attested device must stay free of integrity signals before it is TRUSTED. */
  trustedAfterSeconds: number;
  lifetimes: Record<DeviceTrust, SessionLifetime>;
}

/**
 * Builds the device configuration from parsed variables. A trust level without its own lifetime
 * variables derives them from TOLLGATE_SESSION_IDLE_SECONDS and TOLLGATE_SESSION_ABSOLUTE_SECONDS.
 * UNKNOWN devices keep at most 7 days idle and 30 days absolute. BASIC and ATTESTED devices keep the
 * general values, and TRUSTED devices keep at least 60 days idle and 180 days absolute.
 */
export function deviceConfigFrom(env: DeviceEnv): DeviceConfig {
  const idle = env.TOLLGATE_SESSION_IDLE_SECONDS;
  const absolute = env.TOLLGATE_SESSION_ABSOLUTE_SECONDS;
  const derived: Record<DeviceTrust, SessionLifetime> = {
    UNKNOWN: { idleSeconds: Math.min(idle, 7 * day), absoluteSeconds: Math.min(absolute, 30 * day) },
    BASIC: { idleSeconds: idle, absoluteSeconds: absolute },
    ATTESTED: { idleSeconds: idle, absoluteSeconds: absolute },
    TRUSTED: { idleSeconds: Math.max(idle, 60 * day), absoluteSeconds: Math.max(absolute, 180 * day) },
  };
  const lifetimes = Object.fromEntries(
    trustLevels.map((level) => [
      level,
      {
        idleSeconds: env[`TOLLGATE_SESSION_IDLE_SECONDS_${level}`] ?? derived[level].idleSeconds,
        absoluteSeconds: env[`TOLLGATE_SESSION_ABSOLUTE_SECONDS_${level}`] ?? derived[level].absoluteSeconds,
      },
    ]),
  ) as Record<DeviceTrust, SessionLifetime>;

  return {
    dpop: {
      publicUrl: (env.TOLLGATE_PUBLIC_URL ?? env.TOLLGATE_ISSUER).replace(/\/+$/, ''),
      maxAgeSeconds: env.TOLLGATE_DPOP_MAX_AGE_SECONDS,
      maxFutureSeconds: env.TOLLGATE_DPOP_MAX_FUTURE_SECONDS,
      nonceRequired: env.TOLLGATE_DPOP_NONCE_REQUIRED,
      keyCacheSize: env.TOLLGATE_DPOP_KEY_CACHE_SIZE,
    },
    refreshMismatchRevokes: env.TOLLGATE_REFRESH_DEVICE_MISMATCH_REVOKES,
    trustedAfterSeconds: env.TOLLGATE_DEVICE_TRUSTED_AFTER_SECONDS,
    lifetimes,
  };
}

/** Lists the device settings that contradict each other, each naming its variable. */
export function deviceConfigProblems(config: DeviceConfig, env: { TOLLGATE_PUBLIC_URL?: string | undefined }): string[] {
  const problems: string[] = [];
  const protocol = URL.canParse(config.dpop.publicUrl) ? new URL(config.dpop.publicUrl).protocol : undefined;
  if (!env.TOLLGATE_PUBLIC_URL && protocol !== 'http:' && protocol !== 'https:') {
    problems.push('TOLLGATE_PUBLIC_URL: required when TOLLGATE_ISSUER is not an http(s) URL, because DPoP proofs name the URL apps call');
  }
  for (const level of trustLevels) {
    const lifetime = config.lifetimes[level];
    if (lifetime.absoluteSeconds < lifetime.idleSeconds) {
      problems.push(`TOLLGATE_SESSION_ABSOLUTE_SECONDS_${level}: must be at least the idle lifetime of ${level} devices (${lifetime.idleSeconds} s)`);
    }
  }
  return problems;
}
