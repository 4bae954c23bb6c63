import type { GraphQLFieldResolver } from 'graphql';
import type { IMiddlewareTypeMap } from 'graphql-middleware';

import type { FieldPolicy } from '../authz/compile.ts';
import { loadOnce, type RequestContext } from '../context.ts';
import type { RiskEngine } from './engine.ts';

/**
 * Field middleware that takes a risk decision before every field whose tier is assessed (HIGH and
 * CRITICAL by default). It runs once per field and request, after the authorization rules allowed
 * the field. A rejection becomes the field's error, so the rest of the response still resolves.
 */
export function riskFieldGuard(policies: Map<string, FieldPolicy>, assessedTiers: readonly string[], risk: RiskEngine): IMiddlewareTypeMap {
  const assessed = new Set(assessedTiers);
  const map: Record<string, Record<string, unknown>> = {};

  for (const policy of policies.values()) {
    if (!policy.tier || !assessed.has(policy.tier)) continue;
    const coordinate = policy.coordinate;
    const [typeName, fieldName] = coordinate.split('.') as [string, string];
    map[typeName] ??= {};
    map[typeName][fieldName] = async (resolve: GraphQLFieldResolver<unknown, RequestContext>, parent: unknown, args: Record<string, unknown>, context: RequestContext, info: Parameters<GraphQLFieldResolver<unknown, RequestContext>>[3]) => {
      const principal = context.auth.principal;
      // Assessed tiers need a token, so the authorization rule has already refused anonymous calls.
      if (principal) {
        const denial = await loadOnce(context, `risk:${principal.tokenId}:${coordinate}`, () => risk.assessField(principal, coordinate, context.facts));
        if (denial) throw denial;
      }
      return resolve(parent, args, context, info);
    };
  }
  return map as IMiddlewareTypeMap;
}
