import { z } from 'zod';

import { loadTierPolicies, PolicyFileError } from './authz/policy-file.ts';
import type { TierSet } from './authz/tiers.ts';
import { attestationConfigFrom, attestationEnvShape, type AttestationConfig } from './devices/attestation/index.ts';
import { deviceConfigFrom, deviceConfigProblems, deviceEnvShape, type DeviceConfig } from './devices/config.ts';
import { hardeningConfigFrom, riskConfigFrom, riskEnvShape, type HardeningConfig, type RiskConfig } from './risk/config.ts';

/**
 * Reads and validates Tollgate's environment. A bad value stops start-up with a message that names
 * the variable and what it expects, so a typo never runs with a silent default.
 */

const seconds = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

const masterKey = z
  .string()
  .transform((value, context) => {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length !== 32) {
      context.addIssue({ code: 'custom', message: `expected 32 bytes in base64 (44 characters), got ${bytes.length} bytes` });
      return z.NEVER;
    }
    return bytes;
  });

const cidrList = z
  .string()
  .default('')
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0));

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  TOLLGATE_DATA_DIR: z.string().min(1).default('./.data'),
  TOLLGATE_ISSUER: z.string().min(1).default('http://127.0.0.1:4000'),
  TOLLGATE_AUDIENCE: z.string().min(1).default('tollgate'),
  TOLLGATE_MASTER_KEY: masterKey.optional(),
  TOLLGATE_ACCESS_TOKEN_TTL_SECONDS: seconds(300, 30).refine((value) => value <= 3600, 'at most 3600 seconds'),
  TOLLGATE_CLOCK_SKEW_SECONDS: seconds(30, 0).refine((value) => value <= 300, 'at most 300 seconds'),
  TOLLGATE_REFRESH_GRACE_SECONDS: seconds(10, 0).refine((value) => value <= 120, 'at most 120 seconds'),
  TOLLGATE_SESSION_IDLE_SECONDS: seconds(30 * 24 * 3600, 60),
  TOLLGATE_SESSION_ABSOLUTE_SECONDS: seconds(90 * 24 * 3600, 60),
  TOLLGATE_TOKEN_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
  TOLLGATE_DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  TOLLGATE_AUTHZ_ENGINE: z.enum(['compiled', 'shield']).default('compiled'),
  TOLLGATE_TRUSTED_PROXIES: cidrList,
  ...attestationEnvShape,
  TOLLGATE_POLICY_FILE: z.string().min(1).optional(),
  TOLLGATE_ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).default(19_456),
  TOLLGATE_ARGON2_ITERATIONS: z.coerce.number().int().min(1).default(2),
  TOLLGATE_REDIS_PREFIX: z.string().default('tollgate:'),
  TOLLGATE_REVOCATION_MAX_STALENESS_SECONDS: seconds(30, 0).refine((value) => value <= 3600, 'at most 3600 seconds'),
  ...deviceEnvShape,
  ...riskEnvShape,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.input<typeof envSchema>;

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  host: string;
  port: number;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  dataDir: string;
  issuer: string;
  audience: string;
  /** AES-256-GCM key for signing keys and other secrets at rest; absent until embedded mode supplies one. */
  masterKey: Buffer | undefined;
  accessTokenTtlSeconds: number;
  clockSkewSeconds: number;
  refreshGraceSeconds: number;
  sessionIdleSeconds: number;
  sessionAbsoluteSeconds: number;
  /** Maximum number of verified access tokens kept in memory; 0 turns the cache off. */
  tokenCacheSize: number;
  /** PostgreSQL connections per instance; embedded mode always uses one. */
  databasePoolSize: number;
  /** How the rule tree is applied: `compiled` decides principal-only rules without promises, `shield` uses graphql-shield's middleware. */
  authzEngine: 'compiled' | 'shield';
  trustedProxies: string[];
  /** Platform attestation: challenge lifetime, validity, Play Integrity and App Attest settings. */
  attestation: AttestationConfig;
  policyFile: string | undefined;
  /** Tier policies: the built-in tiers with the policy file's overrides and additions. */
  tiers: TierSet;
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  redisPrefix: string;
  /** How long the in-process revocation view may serve LOW and MEDIUM fields alone while Redis is unreachable. */
  revocationMaxStalenessSeconds: number;
  logLevel: string;
  /** DPoP proofs, device trust and session lifetimes by trust level. */
  devices: DeviceConfig;
  /** Risk signals, decisions and rate limits. */
  risk: RiskConfig;
  /** GraphQL request limits: depth, aliases, cost, tokens, directives, batching, introspection. */
  hardening: HardeningConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws `ConfigError` listing every bad variable at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;

  const attestation = attestationConfigFrom(e);
  if (attestation.problems.length > 0) throw new ConfigError(attestation.problems);

  if (e.TOLLGATE_SESSION_ABSOLUTE_SECONDS < e.TOLLGATE_SESSION_IDLE_SECONDS) {
    throw new ConfigError(['TOLLGATE_SESSION_ABSOLUTE_SECONDS: must be at least TOLLGATE_SESSION_IDLE_SECONDS']);
  }
  if (e.DATABASE_URL && !e.TOLLGATE_MASTER_KEY) {
    throw new ConfigError(['TOLLGATE_MASTER_KEY: required when DATABASE_URL is set (32 random bytes in base64, e.g. `openssl rand -base64 32`)']);
  }
  const tiers = tierPoliciesFrom(e.TOLLGATE_POLICY_FILE);
  const devices = deviceConfigFrom(e);
  const deviceProblems = deviceConfigProblems(devices, e);
  if (deviceProblems.length > 0) throw new ConfigError(deviceProblems);
  let risk: RiskConfig;
  try {
    risk = riskConfigFrom(e);
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }

  return {
    nodeEnv: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    dataDir: e.TOLLGATE_DATA_DIR,
    issuer: e.TOLLGATE_ISSUER,
    audience: e.TOLLGATE_AUDIENCE,
    masterKey: e.TOLLGATE_MASTER_KEY,
    accessTokenTtlSeconds: e.TOLLGATE_ACCESS_TOKEN_TTL_SECONDS,
    clockSkewSeconds: e.TOLLGATE_CLOCK_SKEW_SECONDS,
    refreshGraceSeconds: e.TOLLGATE_REFRESH_GRACE_SECONDS,
    sessionIdleSeconds: e.TOLLGATE_SESSION_IDLE_SECONDS,
    sessionAbsoluteSeconds: e.TOLLGATE_SESSION_ABSOLUTE_SECONDS,
    tokenCacheSize: e.TOLLGATE_TOKEN_CACHE_SIZE,
    databasePoolSize: e.TOLLGATE_DATABASE_POOL_SIZE,
    authzEngine: e.TOLLGATE_AUTHZ_ENGINE,
    trustedProxies: e.TOLLGATE_TRUSTED_PROXIES,
    attestation: attestation.config,
    policyFile: e.TOLLGATE_POLICY_FILE,
    tiers,
    argon2: { memoryCost: e.TOLLGATE_ARGON2_MEMORY_KIB, timeCost: e.TOLLGATE_ARGON2_ITERATIONS, parallelism: 1 },
    redisPrefix: e.TOLLGATE_REDIS_PREFIX,
    revocationMaxStalenessSeconds: e.TOLLGATE_REVOCATION_MAX_STALENESS_SECONDS,
    logLevel: e.LOG_LEVEL,
    devices,
    risk,
    hardening: hardeningConfigFrom(e, e.NODE_ENV),
  };
}

function tierPoliciesFrom(file: string | undefined): TierSet {
  try {
    return loadTierPolicies(file);
  } catch (error) {
    if (error instanceof PolicyFileError) throw new ConfigError(error.problems);
    throw error;
  }
}
