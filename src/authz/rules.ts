import { allow, deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield';

import { epochSeconds } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestContext } from '../context.ts';
import { policyKey, type FieldPolicy } from './compile.ts';
import { evaluateTier, satisfiesScopes, type TierSet } from './tiers.ts';

/** Decides one field policy for the request's principal. */
export function evaluatePolicy(policy: FieldPolicy, tiers: TierSet, context: RequestContext): TollgateError | undefined {
  if (policy.public && !policy.scopes) return undefined;
  const principal = context.auth.principal;

  if (policy.tier) {
    const denial = evaluateTier(tiers.get(policy.tier)!, principal, epochSeconds(context.clock.now()));
    if (denial) return denial;
  }
  if ((policy.authenticated || policy.scopes) && !principal) {
    return new TollgateError('UNAUTHENTICATED');
  }
  if (policy.scopes && principal && !satisfiesScopes(principal, policy.scopes)) {
    return new TollgateError('INSUFFICIENT_SCOPE', undefined, { requiredScopes: policy.scopes });
  }
  return undefined;
}

/**
 * Builds the graphql-shield middleware: one rule per distinct policy, every object field mapped to
 * its rule, and `deny` for anything else. Policy rules read only the principal, so their results are
 * kept per request, keyed by the rule and the principal's token: a `login` inside the request that
 * changes the principal gets a fresh decision.
 */
export function buildShield(policies: Map<string, FieldPolicy>, tiers: TierSet, logger: Logger) {
  const rules = new Map<string, ReturnType<ReturnType<typeof rule>>>();
  const tree: Record<string, Record<string, unknown>> = {};

  for (const policy of policies.values()) {
    const key = policyKey(policy);
    let fieldRule = rules.get(key);
    if (!fieldRule) {
      fieldRule = createPolicyRule(key, policy, tiers, logger);
      rules.set(key, fieldRule);
    }
    const [typeName, fieldName] = policy.coordinate.split('.') as [string, string];
    tree[typeName] ??= {};
    (tree[typeName] as Record<string, unknown>)[fieldName] = fieldRule;
  }

  return shield(tree as IRules, {
    fallbackRule: deny,
    fallbackError: () => new TollgateError('FORBIDDEN'),
    allowExternalErrors: true,
    debug: false,
  });
}

function createPolicyRule(key: string, policy: FieldPolicy, tiers: TierSet, logger: Logger) {
  // graphql-shield's own caches key on the rule name alone; this rule keeps its results per request
  // in the context instead, keyed on the principal as well.
  return rule(key, { cache: 'no_cache' })((_parent, _args, context: RequestContext, info) => {
    const cacheKey = `${key}#${context.auth.principal?.tokenId ?? 'anonymous'}`;
    const cached = context.ruleResults.get(cacheKey);
    if (cached !== undefined) return cached;

    let result: true | TollgateError;
    try {
      result = evaluatePolicy(policy, tiers, context) ?? true;
    } catch (error) {
      logger.error({ err: error, rule: key, field: `${info.parentType.name}.${info.fieldName}`, requestId: context.requestId }, 'authorization rule failed');
      result = new TollgateError('INTERNAL_SERVER_ERROR');
    }
    context.ruleResults.set(cacheKey, result);
    return result;
  });
}

export { allow };
