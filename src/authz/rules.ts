import { deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield';
import type { GraphQLResolveInfo } from 'graphql';

import { epochSeconds } from '../clock.ts';
import { isTollgateError, TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestContext } from '../context.ts';
import { withSyncDecision, type RuleTree, type RuleTreeOptions } from './apply.ts';
import { callRulesFor, type CallRule, type CallRuleSet } from './call-rules.ts';
import { PolicyCompileError, policyKey, type FieldPolicy } from './compile.ts';
import { effectivePolicyOf } from './effective.ts';
import { evaluateRequirements, type PolicyRequirements, type TierSet } from './tiers.ts';

/** Decides one field policy for the request's principal, without the field's call rules. */
export function evaluatePolicy(policy: FieldPolicy, tiers: TierSet, context: RequestContext): TollgateError | undefined {
  return evaluateRequirements(effectivePolicyOf(policy, tiers), context.auth.principal, epochSeconds(context.clock.now()));
}

type ShieldRule = ReturnType<ReturnType<typeof rule>>;

interface RuleSpec {
  key: string;
  requirements: PolicyRequirements;
  callRules: CallRule[];
}

/**
 * Builds the graphql-shield middleware: one rule per distinct policy and set of call rules, every
 * object field mapped to its rule, and `deny` for anything else. Throws `PolicyCompileError` when a
 * call rule names a type or field the schema does not have.
 */
export function buildShield(policies: Map<string, FieldPolicy>, tiers: TierSet, logger: Logger, callRules: CallRuleSet = new Map()) {
  const { tree, options } = buildRuleTree(policies, tiers, logger, callRules);
  return shield(tree as IRules, { fallbackRule: deny, fallbackError: options.fallbackError, allowExternalErrors: true, debug: false });
}

/** Builds the rule tree `buildShield` hands to graphql-shield, for `applyRuleTree` to apply. */
export function buildRuleTree(policies: Map<string, FieldPolicy>, tiers: TierSet, logger: Logger, callRules: CallRuleSet = new Map()): { tree: RuleTree; options: RuleTreeOptions } {
  assertCallRulesMatchSchema(policies, callRules);
  const rules = new Map<string, ShieldRule>();
  const tree: Record<string, Record<string, ShieldRule>> = {};

  for (const policy of policies.values()) {
    const fieldCallRules = callRulesFor(callRules, policy.coordinate);
    const key = policyKey(policy);
    const name = fieldCallRules.length === 0 ? key : `${key}+call:${fieldCallRules.map((callRule) => callRule.name).join(',')}`;
    let fieldRule = rules.get(name);
    if (!fieldRule) {
      fieldRule = createFieldRule(name, { key, requirements: effectivePolicyOf(policy, tiers), callRules: fieldCallRules }, tiers, logger);
      rules.set(name, fieldRule);
    }
    const [typeName, fieldName] = policy.coordinate.split('.') as [string, string];
    tree[typeName] ??= {};
    tree[typeName][fieldName] = fieldRule;
  }

  const fallbackError = () => new TollgateError('FORBIDDEN');
  return { tree, options: { fallbackRule: withSyncDecision(deny, fallbackError), fallbackError } };
}

function assertCallRulesMatchSchema(policies: Map<string, FieldPolicy>, callRules: CallRuleSet): void {
  const typeNames = new Set([...policies.keys()].map((coordinate) => coordinate.slice(0, coordinate.indexOf('.'))));
  const unknown = [...callRules.keys()].filter((coordinate) => (coordinate.includes('.') ? !policies.has(coordinate) : !typeNames.has(coordinate)));
  if (unknown.length > 0) {
    throw new PolicyCompileError(unknown.map((coordinate) => `${coordinate}: a call rule names a type or field that schema.graphql does not have`));
  }
}

/**
 * graphql-shield turns an exception inside a rule into a silent denial, and its own caches key on
 * the rule name alone. This rule therefore catches its own errors, and keeps the principal-only
 * decision per request in the context, keyed on the principal's token as well: a `login` inside the
 * request that changes the principal gets a fresh decision. Call rules read the parent or arguments
 * and run on every call.
 */
function createFieldRule(name: string, spec: RuleSpec, tiers: TierSet, logger: Logger): ShieldRule {
  const fieldRule = rule(name, { cache: 'no_cache' })(async (parent: unknown, args: Record<string, unknown>, context: RequestContext, info: GraphQLResolveInfo) => {
    try {
      const decision = decidePolicy(spec, context);
      if (decision !== true) return decision;

      for (const callRule of spec.callRules) {
        const denial = await callRule.check({ parent, args, context, tiers });
        if (denial) return denial;
      }
      return true;
    } catch (error) {
      // A call rule may reject bad input with a client-actionable error; anything else is a bug.
      if (isTollgateError(error)) return error;
      logger.error({ err: error, rule: name, field: `${info.parentType.name}.${info.fieldName}`, requestId: context.requestId }, 'authorization rule failed');
      return new TollgateError('INTERNAL_SERVER_ERROR');
    }
  });
  if (spec.callRules.length > 0) return fieldRule;

  // Without call rules the decision reads only the principal, so it can be made without a promise.
  return withSyncDecision(fieldRule, (context) => {
    try {
      return decidePolicy(spec, context);
    } catch (error) {
      logger.error({ err: error, rule: name, requestId: context.requestId }, 'authorization rule failed');
      return new TollgateError('INTERNAL_SERVER_ERROR');
    }
  });
}

function decidePolicy(spec: RuleSpec, context: RequestContext): true | TollgateError {
  // Keyed by the policy alone, with the token beside it: this runs once per field of every list
  // item, so it builds no string per call.
  const tokenId = context.auth.principal?.tokenId ?? 'anonymous';
  const cached = context.ruleResults.get(spec.key);
  if (cached !== undefined && cached.tokenId === tokenId) return cached.result;

  const result = evaluateRequirements(spec.requirements, context.auth.principal, epochSeconds(context.clock.now())) ?? true;
  context.ruleResults.set(spec.key, { tokenId, result });
  return result;
}
