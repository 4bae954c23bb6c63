import { getNamedType, isNonNullType, isObjectType, isUnionType, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

import { callRulesFor, type CallRuleSet } from './call-rules.ts';
import { compileFieldPolicies, typePolicyOf, type FieldPolicy } from './compile.ts';
import { effectivePolicyOf, weakerRequirements, type Requirement } from './effective.ts';
import type { PolicyRequirements, TierSet } from './tiers.ts';

/** One field's effective policy, as `npm run policy` prints it. */
export interface PolicyRow {
  type: string;
  field: string;
  declaredOn: 'field' | 'type';
  tier: string | null;
  requiresToken: boolean;
  /** Alternatives of conjunctions, the tier's scopes and `@requiresScopes` combined. */
  scopes: string[][] | null;
  minDeviceTrust: string | null;
  maxAuthAgeSeconds: number | null;
  acrValues: string[] | null;
  maxRiskLevel: string | null;
  requireDpop: boolean;
  maxAttestationAgeSeconds: number | null;
  requireVerifiedRevocation: boolean;
  callRules: string[];
  nonNull: boolean;
  /** Non-null, yet a rule may reject it where its parent object was delivered: the rejection would null the parent too. */
  refusableNonNull: boolean;
  /** Requirements in which the field's own declaration is weaker than its type's; empty when not. */
  weakerThanType: Requirement[];
}

/** Builds the report for every field of every object type; throws `PolicyCompileError` like start-up does. */
export function buildPolicyReport(schema: GraphQLSchema, tiers: TierSet, callRules: CallRuleSet): PolicyRow[] {
  const policies = compileFieldPolicies(schema, tiers);
  const effective = new Map([...policies].map(([coordinate, policy]) => [coordinate, effectivePolicyOf(policy, tiers)]));
  const incoming = incomingFields(schema);
  const rootTypes = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter((type) => type).map((type) => type!.name));
  const rows: PolicyRow[] = [];

  for (const policy of policies.values()) {
    const [typeName, fieldName] = policy.coordinate.split('.') as [string, string];
    const type = schema.getType(typeName) as GraphQLObjectType;
    const requirements = effective.get(policy.coordinate)!;
    const fieldCallRules = callRulesFor(callRules, policy.coordinate).map((callRule) => callRule.name);
    const nonNull = isNonNullType(type.getFields()[fieldName]!.type);

    const mayReject = requirements.requiresToken || fieldCallRules.length > 0;
    const parents = incoming.get(typeName) ?? [];
    const rejectableUnderParent = rootTypes.has(typeName)
      ? mayReject
      : fieldCallRules.length > 0 || parents.some((parent) => weakerRequirements(effective.get(parent)!, requirements).length > 0);

    rows.push({
      type: typeName,
      field: fieldName,
      declaredOn: policy.declaredOn,
      tier: policy.tier ?? null,
      ...describeRequirements(requirements),
      callRules: fieldCallRules,
      nonNull,
      refusableNonNull: nonNull && rejectableUnderParent,
      weakerThanType: weakerThanType(schema, type, policy, requirements, tiers),
    });
  }
  return rows.sort((left, right) => left.type.localeCompare(right.type) || left.field.localeCompare(right.field));
}

function describeRequirements(requirements: PolicyRequirements) {
  return {
    requiresToken: requirements.requiresToken,
    scopes: requirements.scopes ?? null,
    minDeviceTrust: requirements.minDeviceTrust ?? null,
    maxAuthAgeSeconds: requirements.maxAuthAgeSeconds ?? null,
    acrValues: requirements.acrValues ?? null,
    maxRiskLevel: requirements.maxRiskLevel ?? null,
    requireDpop: requirements.requireDpop ?? false,
    maxAttestationAgeSeconds: requirements.maxAttestationAgeSeconds ?? null,
    requireVerifiedRevocation: requirements.requireVerifiedRevocation ?? false,
  };
}

function weakerThanType(schema: GraphQLSchema, type: GraphQLObjectType, policy: FieldPolicy, requirements: PolicyRequirements, tiers: TierSet): Requirement[] {
  if (policy.declaredOn !== 'field') return [];
  const typePolicy = typePolicyOf(schema, type);
  if (!typePolicy) return [];
  return weakerRequirements(requirements, effectivePolicyOf(typePolicy, tiers));
}

/** Maps each object type to the fields that return it, directly, in a list or through a union. */
function incomingFields(schema: GraphQLSchema): Map<string, string[]> {
  const incoming = new Map<string, string[]>();
  const add = (typeName: string, coordinate: string) => incoming.set(typeName, [...(incoming.get(typeName) ?? []), coordinate]);

  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const returned = getNamedType(field.type);
      const coordinate = `${type.name}.${field.name}`;
      if (isObjectType(returned)) add(returned.name, coordinate);
      if (isUnionType(returned)) for (const member of returned.getTypes()) add(member.name, coordinate);
    }
  }
  return incoming;
}

const columns: Array<[string, (row: PolicyRow) => string]> = [
  ['type', (row) => row.type],
  ['field', (row) => row.field],
  ['declared on', (row) => row.declaredOn],
  ['tier', (row) => row.tier ?? '-'],
  ['scopes', (row) => (row.scopes ? row.scopes.map((all) => all.join(' & ')).join(' | ') : '-')],
  ['token', (row) => (row.requiresToken ? 'yes' : 'no')],
  ['min trust', (row) => row.minDeviceTrust ?? '-'],
  ['max auth age', (row) => (row.maxAuthAgeSeconds === null ? '-' : `${row.maxAuthAgeSeconds}s`)],
  ['acr', (row) => row.acrValues?.join(' ') ?? '-'],
  ['max risk', (row) => row.maxRiskLevel ?? '-'],
  ['DPoP', (row) => (row.requireDpop ? 'yes' : 'no')],
  ['max attestation age', (row) => (row.maxAttestationAgeSeconds === null ? '-' : `${row.maxAttestationAgeSeconds}s`)],
  ['verified revocation', (row) => (row.requireVerifiedRevocation ? 'yes' : 'no')],
  ['call rules', (row) => row.callRules.join(', ') || '-'],
  ['flags', (row) => flagsOf(row).join('; ')],
];

function flagsOf(row: PolicyRow): string[] {
  const flags: string[] = [];
  if (row.refusableNonNull) flags.push('refusable non-null');
  if (row.weakerThanType.length > 0) flags.push(`weaker than type: ${row.weakerThanType.join(', ')}`);
  return flags;
}

/** Formats the report as a plain-text table with a summary line. */
export function formatPolicyTable(rows: PolicyRow[]): string {
  const cells = rows.map((row) => columns.map(([, cell]) => cell(row)));
  const widths = columns.map(([title], index) => Math.max(title.length, ...cells.map((line) => line[index]!.length)));
  const format = (line: string[]) => line.map((cell, index) => cell.padEnd(widths[index]!)).join('  ').trimEnd();

  const refusable = rows.filter((row) => row.refusableNonNull).length;
  const weaker = rows.filter((row) => row.weakerThanType.length > 0).length;
  return [
    format(columns.map(([title]) => title)),
    format(widths.map((width) => '-'.repeat(width))),
    ...cells.map(format),
    '',
    `${rows.length} fields; ${refusable} refusable non-null; ${weaker} weaker than their type`,
  ].join('\n');
}
