import type { FieldPolicy } from './compile.ts';
import { riskRank, trustRank } from './principal.ts';
import type { PolicyRequirements, TierSet } from './tiers.ts';

/**
 * Resolves what a field really demands: its tier's policy, with `@authenticated` and
 * `@requiresScopes` added by AND. The compiler has already checked that the tier exists.
 */
export function effectivePolicyOf(policy: FieldPolicy, tiers: TierSet): PolicyRequirements {
  const tier = policy.tier === undefined ? undefined : tiers.get(policy.tier);
  const tierRequirements: PolicyRequirements = tier?.requiresToken ? withoutName(tier) : { requiresToken: false };
  const requiresToken = tierRequirements.requiresToken || policy.authenticated || policy.scopes !== undefined;
  const scopes = combineScopes(tierRequirements.scopes, policy.scopes);

  const effective: PolicyRequirements = { ...tierRequirements, requiresToken };
  if (scopes) effective.scopes = scopes;
  else delete effective.scopes;
  return effective;
}

function withoutName(tier: PolicyRequirements & { name?: string }): PolicyRequirements {
  const { name: _name, ...requirements } = tier;
  return requirements;
}

/**
 * ANDs two scope requirements, each in disjunctive normal form: (a OR b) AND (c) becomes
 * (a AND c) OR (b AND c). Duplicate scopes and alternatives are removed.
 */
export function combineScopes(left: string[][] | undefined, right: string[][] | undefined): string[][] | undefined {
  if (!left) return right;
  if (!right) return left;

  const seen = new Set<string>();
  const combined: string[][] = [];
  for (const leftAlternative of left) {
    for (const rightAlternative of right) {
      const alternative = [...new Set([...leftAlternative, ...rightAlternative])].sort();
      const key = alternative.join(' ');
      if (seen.has(key)) continue;
      seen.add(key);
      combined.push(alternative);
    }
  }
  return combined;
}

/** A requirement in which one policy is weaker than another; the names are those of the policy file. */
export type Requirement = keyof PolicyRequirements;

/**
 * Lists the requirements in which `candidate` lets through a principal that `reference` would reject.
 * An empty list means `candidate` is at least as strong as `reference`.
 */
export function weakerRequirements(candidate: PolicyRequirements, reference: PolicyRequirements): Requirement[] {
  const weaker: Requirement[] = [];
  if (reference.requiresToken && !candidate.requiresToken) weaker.push('requiresToken');
  if (!scopesImply(candidate.scopes, reference.scopes)) weaker.push('scopes');
  if (reference.minDeviceTrust && (!candidate.minDeviceTrust || trustRank(candidate.minDeviceTrust) < trustRank(reference.minDeviceTrust))) {
    weaker.push('minDeviceTrust');
  }
  if (isLooserBound(candidate.maxAuthAgeSeconds, reference.maxAuthAgeSeconds)) weaker.push('maxAuthAgeSeconds');
  if (reference.acrValues && (!candidate.acrValues || candidate.acrValues.some((acr) => !reference.acrValues?.includes(acr)))) {
    weaker.push('acrValues');
  }
  if (reference.maxRiskLevel && (!candidate.maxRiskLevel || riskRank(candidate.maxRiskLevel) > riskRank(reference.maxRiskLevel))) {
    weaker.push('maxRiskLevel');
  }
  if (reference.requireDpop && !candidate.requireDpop) weaker.push('requireDpop');
  if (isLooserBound(candidate.maxAttestationAgeSeconds, reference.maxAttestationAgeSeconds)) weaker.push('maxAttestationAgeSeconds');
  if (reference.requireVerifiedRevocation && !candidate.requireVerifiedRevocation) weaker.push('requireVerifiedRevocation');
  return weaker;
}

/** Returns whether an upper bound (undefined meaning none) admits more than the reference bound. */
function isLooserBound(candidate: number | undefined, reference: number | undefined): boolean {
  if (reference === undefined) return false;
  return candidate === undefined || candidate > reference;
}

/**
 * Returns whether every principal satisfying `candidate` also satisfies `reference`, that is, each
 * alternative of the candidate contains some alternative of the reference.
 */
function scopesImply(candidate: string[][] | undefined, reference: string[][] | undefined): boolean {
  if (!reference) return true;
  if (!candidate) return false;
  return candidate.every((alternative) => reference.some((required) => required.every((scope) => alternative.includes(scope))));
}
