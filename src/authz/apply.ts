import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import type { IRule } from 'graphql-shield';

import type { RequestContext } from '../context.ts';
import type { TollgateError } from '../errors.ts';

type IOptions = Parameters<IRule['resolve']>[4];

/** graphql-shield rules by type and field, as `shield()` takes them. */
export type RuleTree = Record<string, Record<string, object>>;

/**
 * Synchronous decision for a rule whose result depends only on the request context. It returns
 * what the rule's graphql-shield function returns, without a promise.
 */
export type SyncDecision = (context: RequestContext) => true | TollgateError;

const syncDecisions = new WeakMap<object, SyncDecision>();

/** Registers the synchronous form of a rule, used by `applyRuleTree` in place of `rule.resolve`. */
export function withSyncDecision<R extends object>(rule: R, decide: SyncDecision): R {
  syncDecisions.set(rule, decide);
  return rule;
}

export interface RuleTreeOptions {
  fallbackRule: object;
  fallbackError: () => Error;
}

/**
 * Applies a graphql-shield rule tree to every object field, with `fallbackRule` for fields the tree
 * does not name, as `shield()` does. graphql-shield's middleware awaits every rule and every
 * resolver, which turns each field of a large list into two promises. Here a rule registered with
 * `withSyncDecision` is decided synchronously and the resolver is called directly, so such a field
 * costs what it costs without authorization. Other rules go through graphql-shield's own `resolve`.
 */
export function applyRuleTree(schema: GraphQLSchema, tree: RuleTree, options: RuleTreeOptions): GraphQLSchema {
  const shieldOptions = {
    debug: false,
    allowExternalErrors: true,
    fallbackRule: options.fallbackRule,
    fallbackError: options.fallbackError,
    disableFragmentsAndPostExecRules: true,
  } as unknown as IOptions;

  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      if (typeName.startsWith('__')) return fieldConfig;
      const fieldRule = tree[typeName]?.[fieldName] ?? options.fallbackRule;
      const resolve = (fieldConfig.resolve ?? defaultFieldResolver) as GraphQLFieldResolver<unknown, RequestContext>;
      return { ...fieldConfig, resolve: guard(fieldRule, resolve, options, shieldOptions) };
    },
  });
}

function guard(fieldRule: object, resolve: GraphQLFieldResolver<unknown, RequestContext>, options: RuleTreeOptions, shieldOptions: IOptions): GraphQLFieldResolver<unknown, RequestContext> {
  const decide = syncDecisions.get(fieldRule);
  if (decide) {
    return (parent, args, context, info) => {
      const decision = decide(context);
      // graphql-js raises an Error returned by a resolver as that field's error.
      return decision === true ? resolve(parent, args, context, info) : decision;
    };
  }

  return async (parent, args, context, info) => {
    const result = await (fieldRule as IRule).resolve(parent as object, args, context as never, info, shieldOptions);
    if (result === true) return resolve(parent, args, context, info);
    if (result === false) return options.fallbackError();
    return result;
  };
}
