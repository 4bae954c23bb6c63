import { readFileSync } from 'node:fs';

import { z } from 'zod';

import { riskLevels, type RiskLevel } from '../authz/principal.ts';

/**
 * Settings of the risk engine, the rate limits and the GraphQL hardening. The environment sets the
 * windows, thresholds and limits; an optional JSON policy file (`TOLLGATE_RISK_POLICY_FILE`) sets
 * signal weights, level thresholds and the action for each level. Everything is validated at start.
 */

const positiveInt = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** `POINTS/SECONDS`, e.g. `10/900`: at most 10 attempts per 900 seconds. */
const rateLimit = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, context) => {
      const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
      const points = Number(match?.[1]);
      const seconds = Number(match?.[2]);
      if (!match || points < 1 || seconds < 1) {
        context.addIssue({ code: 'custom', message: `expected POINTS/SECONDS with both at least 1, e.g. ${fallback}; got "${value}"` });
        return z.NEVER;
      }
      return { points, durationSeconds: seconds };
    });

const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((value) => value === 'true' || value === '1');

const nameList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0));

/** Environment variables of this module, merged into the gateway's environment schema. */
export const riskEnvShape = {
  TOLLGATE_RISK_POLICY_FILE: z.string().min(1).optional(),

  TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT: rateLimit('10/900'),
  TOLLGATE_RATE_LIMIT_LOGIN_IP: rateLimit('50/900'),
  TOLLGATE_RATE_LIMIT_SIGNUP_IP: rateLimit('10/3600'),
  TOLLGATE_RATE_LIMIT_REFRESH_DEVICE: rateLimit('30/300'),
  TOLLGATE_RATE_LIMIT_STEP_UP_SESSION: rateLimit('5/300'),
  TOLLGATE_RATE_LIMIT_LOGIN_CHALLENGE: rateLimit('5/300'),

  TOLLGATE_RISK_FAILED_LOGIN_WINDOW_SECONDS: positiveInt(900),
  TOLLGATE_RISK_FAILED_LOGIN_ACCOUNT_THRESHOLD: positiveInt(5),
  TOLLGATE_RISK_FAILED_LOGIN_IP_THRESHOLD: positiveInt(20),
  TOLLGATE_RISK_FAILED_LOGIN_PREFIX_THRESHOLD: positiveInt(40),
  TOLLGATE_RISK_FANOUT_WINDOW_SECONDS: positiveInt(3600),
  TOLLGATE_RISK_FANOUT_IP_THRESHOLD: positiveInt(10),
  TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD: positiveInt(3),
  TOLLGATE_RISK_REFRESH_BURST_WINDOW_SECONDS: positiveInt(60),
  TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: positiveInt(10),
  TOLLGATE_RISK_REFRESH_SYNC_WINDOW_SECONDS: positiveInt(10),
  TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD: positiveInt(50),
  TOLLGATE_RISK_TRAVEL_MAX_KMH: positiveInt(900),
  TOLLGATE_RISK_TRAVEL_MIN_KM: nonNegativeInt(300),
  TOLLGATE_RISK_COUNTRY_CHANGE_SECONDS: positiveInt(3600),
  TOLLGATE_RISK_ASSESSED_TIERS: nameList('HIGH,CRITICAL'),
  TOLLGATE_RISK_STEP_UP_MAX_AGE_SECONDS: positiveInt(300),
  TOLLGATE_GEOIP_DATABASE: z.string().min(1).optional(),
  TOLLGATE_GEO_LATITUDE_HEADER: z.string().min(1).optional(),
  TOLLGATE_GEO_LONGITUDE_HEADER: z.string().min(1).optional(),
  TOLLGATE_GEO_COUNTRY_HEADER: z.string().min(1).optional(),

  TOLLGATE_GRAPHQL_MAX_DEPTH: positiveInt(6),
  TOLLGATE_GRAPHQL_MAX_ALIASES: nonNegativeInt(15),
  TOLLGATE_GRAPHQL_MAX_COST: positiveInt(5000),
  TOLLGATE_GRAPHQL_MAX_TOKENS: positiveInt(1000),
  TOLLGATE_GRAPHQL_MAX_DIRECTIVES: nonNegativeInt(50),
  TOLLGATE_GRAPHQL_MAX_LIMITED_CALLS: positiveInt(1),
  TOLLGATE_GRAPHQL_INTROSPECTION: z.enum(['true', 'false', '1', '0']).optional(),
  TOLLGATE_GRAPHQL_BATCHING: flag(false),
  TOLLGATE_GRAPHQL_MAX_BATCH: positiveInt(5),
};

type RiskEnv = z.output<z.ZodObject<typeof riskEnvShape>>;

export interface RateLimitSetting {
  points: number;
  durationSeconds: number;
}

/** Names of the rate limiters; each counts attempts per key within its window. */
export type LimiterName = 'loginAccount' | 'loginIp' | 'signUpIp' | 'refreshDevice';

export const signalNames = [
  'new_device',
  'impossible_travel',
  'failed_logins_account',
  'failed_logins_ip',
  'failed_logins_prefix',
  'account_fanout_ip',
  'account_fanout_device',
  'refresh_burst',
  'refresh_sync',
  'device_integrity',
  'device_untrusted',
  'first_sensitive_use',
  'session_risk_medium',
  'session_risk_high',
] as const;
export type SignalName = (typeof signalNames)[number];

export const riskActions = ['allow', 'step_up', 'deny', 'suspend'] as const;
export type RiskAction = (typeof riskActions)[number];

/** The point a decision is taken at: sign-in, refresh, or before a field of an assessed tier. */
export type DecisionPoint = 'login' | 'refresh' | 'sensitive';

const actionsByLevel = z.strictObject({ LOW: z.enum(riskActions), MEDIUM: z.enum(riskActions), HIGH: z.enum(riskActions) });

/** The policy file: every member optional, merged over `defaultRiskPolicy`. */
const policyFileSchema = z.strictObject({
  weights: z.partialRecord(z.enum(signalNames), z.number().int().min(0).max(1000)).optional(),
  levels: z.strictObject({ MEDIUM: z.number().int().min(1), HIGH: z.number().int().min(1) }).optional(),
  actions: z
    .strictObject({ login: actionsByLevel.optional(), refresh: actionsByLevel.optional(), sensitive: actionsByLevel.optional() })
    .optional(),
  /** The action that replaces a step-up when the account has no second factor to step up with. */
  stepUpUnavailable: z.enum(['allow', 'deny']).optional(),
});

export interface RiskPolicy {
  weights: Record<SignalName, number>;
  /** Lowest score of each level above LOW. */
  levels: { MEDIUM: number; HIGH: number };
  actions: Record<DecisionPoint, Record<RiskLevel, RiskAction>>;
  stepUpUnavailable: 'allow' | 'deny';
}

export const defaultRiskPolicy: RiskPolicy = {
  weights: {
    new_device: 30,
    impossible_travel: 70,
    failed_logins_account: 40,
    failed_logins_ip: 30,
    failed_logins_prefix: 30,
    account_fanout_ip: 70,
    account_fanout_device: 70,
    refresh_burst: 70,
    refresh_sync: 40,
    device_integrity: 40,
    device_untrusted: 10,
    first_sensitive_use: 30,
    session_risk_medium: 30,
    session_risk_high: 70,
  },
  levels: { MEDIUM: 30, HIGH: 70 },
  actions: {
    login: { LOW: 'allow', MEDIUM: 'step_up', HIGH: 'deny' },
    refresh: { LOW: 'allow', MEDIUM: 'allow', HIGH: 'suspend' },
    sensitive: { LOW: 'allow', MEDIUM: 'step_up', HIGH: 'deny' },
  },
  stepUpUnavailable: 'allow',
};

export interface RiskConfig {
  policy: RiskPolicy;
  limits: Record<LimiterName, RateLimitSetting>;
  /**
   * Second-factor attempts: per session for stepUp, TOTP confirmation and password change, and per
   * login challenge for completeLogin. Counted in a sliding window on the injected clock.
   */
  attempts: { stepUpSession: RateLimitSetting; loginChallenge: RateLimitSetting };
  failedLogins: { windowSeconds: number; accountThreshold: number; ipThreshold: number; prefixThreshold: number };
  fanout: { windowSeconds: number; ipThreshold: number; deviceThreshold: number };
  refresh: { burstWindowSeconds: number; burstThreshold: number; syncWindowSeconds: number; syncThreshold: number };
  /**
   * Impossible travel: faster than `maxKmh` between two sign-ins or refreshes more than `minKm`
   * apart, since closer jumps are within the error of IP geolocation. With countries only, it is a
   * change of country within `countryChangeSeconds`.
   */
  travel: { maxKmh: number; minKm: number; countryChangeSeconds: number };
  geo: { databaseFile: string | undefined; latitudeHeader: string | undefined; longitudeHeader: string | undefined; countryHeader: string | undefined };
  /** Tiers whose fields get a risk decision before they resolve. */
  assessedTiers: string[];
  /** A step-up younger than this satisfies a step-up decision on a sensitive field. */
  stepUpMaxAgeSeconds: number;
}

export interface HardeningConfig {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  maxDirectives: number;
  /** Calls of rate-limited mutations (login, stepUp, ...) one request may carry, aliases and batches included. */
  maxLimitedCalls: number;
  introspection: boolean;
  batching: boolean;
  maxBatch: number;
}

/** Reads and validates the policy file; throws an Error naming the file and each bad member. */
export function loadRiskPolicy(file: string | undefined): RiskPolicy {
  if (!file) return defaultRiskPolicy;

  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`TOLLGATE_RISK_POLICY_FILE: cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`TOLLGATE_RISK_POLICY_FILE: ${file} is invalid: ${problems.join('; ')}`);
  }
  const policy: RiskPolicy = {
    weights: { ...defaultRiskPolicy.weights, ...parsed.data.weights },
    levels: parsed.data.levels ?? defaultRiskPolicy.levels,
    actions: {
      login: parsed.data.actions?.login ?? defaultRiskPolicy.actions.login,
      refresh: parsed.data.actions?.refresh ?? defaultRiskPolicy.actions.refresh,
      sensitive: parsed.data.actions?.sensitive ?? defaultRiskPolicy.actions.sensitive,
    },
    stepUpUnavailable: parsed.data.stepUpUnavailable ?? defaultRiskPolicy.stepUpUnavailable,
  };
  if (policy.levels.HIGH <= policy.levels.MEDIUM) {
    throw new Error(`TOLLGATE_RISK_POLICY_FILE: ${file} is invalid: levels.HIGH must be greater than levels.MEDIUM`);
  }
  return policy;
}

/** Builds the risk settings from the parsed environment. */
export function riskConfigFrom(env: RiskEnv): RiskConfig {
  return {
    policy: loadRiskPolicy(env.TOLLGATE_RISK_POLICY_FILE),
    limits: {
      loginAccount: env.TOLLGATE_RATE_LIMIT_LOGIN_ACCOUNT,
      loginIp: env.TOLLGATE_RATE_LIMIT_LOGIN_IP,
      signUpIp: env.TOLLGATE_RATE_LIMIT_SIGNUP_IP,
      refreshDevice: env.TOLLGATE_RATE_LIMIT_REFRESH_DEVICE,
    },
    attempts: { stepUpSession: env.TOLLGATE_RATE_LIMIT_STEP_UP_SESSION, loginChallenge: env.TOLLGATE_RATE_LIMIT_LOGIN_CHALLENGE },
    failedLogins: {
      windowSeconds: env.TOLLGATE_RISK_FAILED_LOGIN_WINDOW_SECONDS,
      accountThreshold: env.TOLLGATE_RISK_FAILED_LOGIN_ACCOUNT_THRESHOLD,
      ipThreshold: env.TOLLGATE_RISK_FAILED_LOGIN_IP_THRESHOLD,
      prefixThreshold: env.TOLLGATE_RISK_FAILED_LOGIN_PREFIX_THRESHOLD,
    },
    fanout: {
      windowSeconds: env.TOLLGATE_RISK_FANOUT_WINDOW_SECONDS,
      ipThreshold: env.TOLLGATE_RISK_FANOUT_IP_THRESHOLD,
      deviceThreshold: env.TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD,
    },
    refresh: {
      burstWindowSeconds: env.TOLLGATE_RISK_REFRESH_BURST_WINDOW_SECONDS,
      burstThreshold: env.TOLLGATE_RISK_REFRESH_BURST_THRESHOLD,
      syncWindowSeconds: env.TOLLGATE_RISK_REFRESH_SYNC_WINDOW_SECONDS,
      syncThreshold: env.TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD,
    },
    travel: { maxKmh: env.TOLLGATE_RISK_TRAVEL_MAX_KMH, minKm: env.TOLLGATE_RISK_TRAVEL_MIN_KM, countryChangeSeconds: env.TOLLGATE_RISK_COUNTRY_CHANGE_SECONDS },
    geo: {
      databaseFile: env.TOLLGATE_GEOIP_DATABASE,
      latitudeHeader: env.TOLLGATE_GEO_LATITUDE_HEADER?.toLowerCase(),
      longitudeHeader: env.TOLLGATE_GEO_LONGITUDE_HEADER?.toLowerCase(),
      countryHeader: env.TOLLGATE_GEO_COUNTRY_HEADER?.toLowerCase(),
    },
    assessedTiers: env.TOLLGATE_RISK_ASSESSED_TIERS,
    stepUpMaxAgeSeconds: env.TOLLGATE_RISK_STEP_UP_MAX_AGE_SECONDS,
  };
}

/** Builds the GraphQL hardening settings; introspection defaults to off in production. */
export function hardeningConfigFrom(env: RiskEnv, nodeEnv: string): HardeningConfig {
  const introspection = env.TOLLGATE_GRAPHQL_INTROSPECTION;
  return {
    maxDepth: env.TOLLGATE_GRAPHQL_MAX_DEPTH,
    maxAliases: env.TOLLGATE_GRAPHQL_MAX_ALIASES,
    maxCost: env.TOLLGATE_GRAPHQL_MAX_COST,
    maxTokens: env.TOLLGATE_GRAPHQL_MAX_TOKENS,
    maxDirectives: env.TOLLGATE_GRAPHQL_MAX_DIRECTIVES,
    maxLimitedCalls: env.TOLLGATE_GRAPHQL_MAX_LIMITED_CALLS,
    introspection: introspection === undefined ? nodeEnv !== 'production' : introspection === 'true' || introspection === '1',
    batching: env.TOLLGATE_GRAPHQL_BATCHING,
    maxBatch: env.TOLLGATE_GRAPHQL_MAX_BATCH,
  };
}

export function isRiskLevel(value: unknown): value is RiskLevel {
  return typeof value === 'string' && (riskLevels as readonly string[]).includes(value);
}
