import { getDirective } from '@graphql-tools/utils';
import { isObjectType, type GraphQLField, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

import type { TierSet } from './tiers.ts';

/** The declaration in force for one field, after a field's own directives replaced its type's. */
export interface FieldPolicy {
  /** Schema coordinate, `Type.field`. */
  coordinate: string;
  declaredOn: 'field' | 'type';
  public: boolean;
  authenticated: boolean;
  /** Alternatives of conjunctions from `@requiresScopes`. */
  scopes: string[][] | undefined;
  tier: string | undefined;
}

export class PolicyCompileError extends Error {
  constructor(readonly problems: string[]) {
    super(`schema.graphql has fields Tollgate cannot protect:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'PolicyCompileError';
  }
}

interface Declaration {
  public: boolean;
  authenticated: boolean;
  scopes: string[][] | undefined;
  tier: string | undefined;
}

function readDeclaration(schema: GraphQLSchema, node: GraphQLObjectType | GraphQLField<unknown, unknown>): Declaration | undefined {
  const isPublic = getDirective(schema, node, 'public') !== undefined;
  const authenticated = getDirective(schema, node, 'authenticated') !== undefined;
  const scopes = getDirective(schema, node, 'requiresScopes')?.[0]?.scopes as string[][] | undefined;
  const tier = getDirective(schema, node, 'sensitive')?.[0]?.tier as string | undefined;
  if (!isPublic && !authenticated && scopes === undefined && tier === undefined) return undefined;
  return { public: isPublic, authenticated, scopes, tier };
}

/** The declaration on an object type itself, which its fields inherit unless they declare their own. */
export function typePolicyOf(schema: GraphQLSchema, type: GraphQLObjectType): FieldPolicy | undefined {
  const declaration = readDeclaration(schema, type);
  return declaration && { coordinate: type.name, declaredOn: 'type', ...declaration };
}

/**
 * Resolves the policy of every field of every object type, root, payload and connection types
 * included. Throws `PolicyCompileError` listing every field without a declaration, every unknown
 * tier and every contradictory declaration, so one start-up shows all of them.
 */
export function compileFieldPolicies(schema: GraphQLSchema, tiers: TierSet): Map<string, FieldPolicy> {
  const policies = new Map<string, FieldPolicy>();
  const problems: string[] = [];

  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const typeDeclaration = readDeclaration(schema, type);
    if (typeDeclaration?.tier !== undefined && !tiers.has(typeDeclaration.tier)) {
      problems.push(`${type.name}: @sensitive names unknown tier "${typeDeclaration.tier}" (known: ${[...tiers.keys()].join(', ')})`);
    }

    for (const field of Object.values(type.getFields())) {
      const coordinate = `${type.name}.${field.name}`;
      const fieldDeclaration = readDeclaration(schema, field);
      const declaration = fieldDeclaration ?? typeDeclaration;
      if (!declaration) {
        problems.push(`${coordinate}: no @public, @authenticated, @requiresScopes or @sensitive on the field or its type`);
        continue;
      }
      if (fieldDeclaration?.tier !== undefined && !tiers.has(fieldDeclaration.tier)) {
        problems.push(`${coordinate}: @sensitive names unknown tier "${fieldDeclaration.tier}" (known: ${[...tiers.keys()].join(', ')})`);
      }
      if (declaration.public && (declaration.authenticated || declaration.scopes || (declaration.tier && tiers.get(declaration.tier)?.requiresToken))) {
        problems.push(`${coordinate}: @public cannot be combined with a directive that needs a token`);
      }
      if (declaration.scopes && (declaration.scopes.length === 0 || declaration.scopes.some((all) => all.length === 0))) {
        problems.push(`${coordinate}: @requiresScopes needs at least one non-empty list of scopes`);
      }
      policies.set(coordinate, { coordinate, declaredOn: fieldDeclaration ? 'field' : 'type', ...declaration });
    }
  }

  if (problems.length > 0) throw new PolicyCompileError(problems);
  return policies;
}

/** A stable name for a policy: fields with equal policies share one rule and one cache entry. */
export function policyKey(policy: FieldPolicy): string {
  const parts: string[] = [];
  if (policy.public) parts.push('public');
  if (policy.authenticated) parts.push('authenticated');
  if (policy.tier) parts.push(`tier:${policy.tier}`);
  if (policy.scopes) parts.push(`scopes:${policy.scopes.map((all) => [...all].sort().join('&')).sort().join('|')}`);
  return parts.join('+');
}
