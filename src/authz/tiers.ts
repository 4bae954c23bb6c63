import { TollgateError } from '../errors.ts';
import { riskRank, trustRank, type DeviceTrust, type Principal, type RiskLevel } from './principal.ts';

/** A named policy a field opts into with `@sensitive(tier:)`. */
export interface TierPolicy {
  name: string;
  /** PUBLIC is the only built-in tier that needs no token. */
  requiresToken: boolean;
  /** Alternatives of conjunctions, as in `@requiresScopes`. */
  scopes?: string[][];
  minDeviceTrust?: DeviceTrust;
  /** Maximum seconds since `auth_time`. */
  maxAuthAgeSeconds?: number;
  /** Accepted `acr` values; any when absent. */
  acrValues?: string[];
  maxRiskLevel?: RiskLevel;
  requireDpop?: boolean;
  /**
   * Serve only when Redis confirmed the token is not revoked. Without it, an in-process revocation
   * view younger than the staleness bound is enough while Redis is unreachable.
   */
  requireVerifiedRevocation?: boolean;
}

export type TierSet = ReadonlyMap<string, TierPolicy>;

/** The built-in tiers, each adding to the one before it. */
export const defaultTiers: TierPolicy[] = [
  { name: 'PUBLIC', requiresToken: false },
  { name: 'LOW', requiresToken: true },
  { name: 'MEDIUM', requiresToken: true, minDeviceTrust: 'BASIC' },
  { name: 'HIGH', requiresToken: true, minDeviceTrust: 'BASIC', acrValues: ['aal2'], maxAuthAgeSeconds: 15 * 60, requireVerifiedRevocation: true },
  {
    name: 'CRITICAL',
    requiresToken: true,
    minDeviceTrust: 'ATTESTED',
    acrValues: ['aal2'],
    maxAuthAgeSeconds: 5 * 60,
    maxRiskLevel: 'LOW',
    requireDpop: true,
    requireVerifiedRevocation: true,
  },
];

export function tierSet(tiers: TierPolicy[]): TierSet {
  return new Map(tiers.map((tier) => [tier.name, tier]));
}

/** Returns whether the principal holds every scope of at least one alternative. */
export function satisfiesScopes(principal: Principal, alternatives: string[][]): boolean {
  return alternatives.some((all) => all.every((scope) => principal.scopes.has(scope)));
}

/**
 * Checks a principal against a tier. Returns undefined when allowed, otherwise the error the client
 * can act on. Checks run from the one the user can do least about to the one a step-up fixes, so
 * a challenge is only sent when stepping up would actually help.
 */
export function evaluateTier(tier: TierPolicy, principal: Principal | null, nowSeconds: number): TollgateError | undefined {
  if (!tier.requiresToken) return undefined;
  if (!principal) return new TollgateError('UNAUTHENTICATED');

  const unverified = revocationUnverified(tier, principal);
  if (unverified) return unverified;

  if (tier.scopes && !satisfiesScopes(principal, tier.scopes)) {
    return new TollgateError('INSUFFICIENT_SCOPE', undefined, { requiredScopes: tier.scopes });
  }
  if (tier.requireDpop && !principal.dpopVerified) {
    return new TollgateError('DPOP_PROOF_INVALID', 'This field needs a DPoP-bound access token and a DPoP proof on the request.', { reason: 'proof_required' });
  }
  if (tier.minDeviceTrust && trustRank(principal.deviceTrust) < trustRank(tier.minDeviceTrust)) {
    return new TollgateError('DEVICE_TRUST_REQUIRED', undefined, { requiredTrust: tier.minDeviceTrust, currentTrust: principal.deviceTrust });
  }
  if (tier.maxRiskLevel && riskRank(principal.riskLevel) > riskRank(tier.maxRiskLevel)) {
    return new TollgateError('RISK_DENIED', undefined, { reasons: [`session risk ${principal.riskLevel} exceeds ${tier.maxRiskLevel}`] });
  }
  if (tier.acrValues && !tier.acrValues.includes(principal.acr)) {
    return stepUp(tier, 'authentication_too_weak');
  }
  if (tier.maxAuthAgeSeconds !== undefined && nowSeconds - principal.authTime > tier.maxAuthAgeSeconds) {
    return stepUp(tier, 'authentication_too_old');
  }
  return undefined;
}

function stepUp(tier: TierPolicy, reason: 'authentication_too_weak' | 'authentication_too_old'): TollgateError {
  return new TollgateError('STEP_UP_REQUIRED', undefined, {
    acrValues: tier.acrValues ?? [],
    maxAge: tier.maxAuthAgeSeconds ?? null,
    reason,
  });
}

/**
 * Fails closed when the revocation check could not reach Redis: always once the in-process view is
 * older than its staleness bound, and at once for policies that require a verified check.
 */
function revocationUnverified(policy: TierPolicy, principal: Principal): TollgateError | undefined {
  const freshness = principal.revocation ?? 'verified';
  if (freshness === 'verified') return undefined;
  if (freshness === 'cached' && !policy.requireVerifiedRevocation) return undefined;
  return new TollgateError('SERVICE_UNAVAILABLE', 'Revocations cannot be confirmed right now because Redis is unreachable: retry shortly.', {
    retryAfterSeconds: revocationRetryAfterSeconds,
  });
}

const revocationRetryAfterSeconds = 5;
