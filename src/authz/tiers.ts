import { TollgateError } from '../errors.ts';
import { riskRank, trustRank, type DeviceTrust, type Principal, type RiskLevel } from './principal.ts';

/** What a request must satisfy: a tier's policy, or a field's effective policy after its directives are combined. */
export interface PolicyRequirements {
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
  /** Maximum seconds since the device's last passed platform attestation. */
  maxAttestationAgeSeconds?: number;
  /**
   * Serve only when Redis confirmed the token is not revoked. Without it, an in-process revocation
   * view younger than the staleness bound is enough while Redis is unreachable.
   */
  requireVerifiedRevocation?: boolean;
}

/** A named policy a field opts into with `@sensitive(tier:)`. */
export interface TierPolicy extends PolicyRequirements {
  name: string;
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
 * Checks a principal against a policy. Returns undefined when allowed, otherwise the error the client
 * can act on. Checks run from the one the user can do least about to the one a step-up fixes, so
 * a challenge is only sent when stepping up would actually help.
 */
export function evaluateRequirements(policy: PolicyRequirements, principal: Principal | null, nowSeconds: number): TollgateError | undefined {
  if (!policy.requiresToken) return undefined;
  if (!principal) return new TollgateError('UNAUTHENTICATED');

  const unverified = revocationUnverified(policy, principal);
  if (unverified) return unverified;

  if (policy.scopes && !satisfiesScopes(principal, policy.scopes)) {
    return new TollgateError('INSUFFICIENT_SCOPE', undefined, { requiredScopes: policy.scopes });
  }
  if (policy.requireDpop && !principal.dpopVerified) {
    return new TollgateError('DPOP_PROOF_INVALID', 'This field needs a DPoP-bound access token and a DPoP proof on the request.', { reason: 'proof_required' });
  }
  if (policy.minDeviceTrust && trustRank(principal.deviceTrust) < trustRank(policy.minDeviceTrust)) {
    return new TollgateError('DEVICE_TRUST_REQUIRED', undefined, { requiredTrust: policy.minDeviceTrust, currentTrust: principal.deviceTrust });
  }
  if (policy.maxAttestationAgeSeconds !== undefined && !attestedWithin(principal, policy.maxAttestationAgeSeconds, nowSeconds)) {
    return new TollgateError('DEVICE_TRUST_REQUIRED', 'This field needs a recent platform attestation of the device: attest the device again.', {
      requiredTrust: policy.minDeviceTrust ?? 'ATTESTED',
      currentTrust: principal.deviceTrust,
      reason: 'attestation_too_old',
      maxAttestationAge: policy.maxAttestationAgeSeconds,
    });
  }
  if (policy.maxRiskLevel && riskRank(principal.riskLevel) > riskRank(policy.maxRiskLevel)) {
    return new TollgateError('RISK_DENIED', undefined, { reasons: [`session risk ${principal.riskLevel} exceeds ${policy.maxRiskLevel}`] });
  }
  if (policy.acrValues && !policy.acrValues.includes(principal.acr)) {
    return stepUpRequired(policy, 'authentication_too_weak');
  }
  if (policy.maxAuthAgeSeconds !== undefined && nowSeconds - principal.authTime > policy.maxAuthAgeSeconds) {
    return stepUpRequired(policy, 'authentication_too_old');
  }
  return undefined;
}

function attestedWithin(principal: Principal, maxAgeSeconds: number, nowSeconds: number): boolean {
  return principal.attestedAt !== undefined && nowSeconds - principal.attestedAt <= maxAgeSeconds;
}

/** The `STEP_UP_REQUIRED` error for a policy: RFC 9470 `acr_values` and `max_age` as extensions. */
export function stepUpRequired(policy: PolicyRequirements, reason: 'authentication_too_weak' | 'authentication_too_old'): TollgateError {
  return new TollgateError('STEP_UP_REQUIRED', undefined, {
    acrValues: policy.acrValues ?? [],
    maxAge: policy.maxAuthAgeSeconds ?? null,
    reason,
  });
}

/**
 * Fails closed when the revocation check could not reach Redis: always once the in-process view is
 * older than its staleness bound, and at once for policies that require a verified check.
 */
function revocationUnverified(policy: PolicyRequirements, principal: Principal): TollgateError | undefined {
  const freshness = principal.revocation ?? 'verified';
  if (freshness === 'verified') return undefined;
  if (freshness === 'cached' && !policy.requireVerifiedRevocation) return undefined;
  return new TollgateError('SERVICE_UNAVAILABLE', 'Revocations cannot be confirmed right now because Redis is unreachable: retry shortly.', {
    retryAfterSeconds: revocationRetryAfterSeconds,
  });
}

const revocationRetryAfterSeconds = 5;
