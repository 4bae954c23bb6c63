import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseDocument } from 'yaml';
import { z } from 'zod';

import { riskLevels, trustLevels, trustRank } from './principal.ts';
import { defaultTiers, tierSet, type PolicyRequirements, type TierPolicy, type TierSet } from './tiers.ts';

/**
 * The tier policy file (`TOLLGATE_POLICY_FILE`), JSON or YAML:
 *
 * ```yaml
 * tiers:
 *   HIGH:                       # a built-in tier: the entry is merged over its defaults
 *     maxAuthAgeSeconds: 600
 *   MEDIUM:
 *     minDeviceTrust: null      # null removes a built-in requirement
 *   PAYOUTS:                    # a new tier: starts from "any valid access token"
 *     extends: CRITICAL         # or from another tier
 *     scopes: [[payments:write]]
 *     maxAttestationAgeSeconds: 86400
 * ```
 *
 * Unknown keys are errors, so a misspelt requirement never leaves a tier weaker than intended.
 */

const tierNamePattern = /^[A-Z][A-Z0-9_]*$/;
const positiveSeconds = z.number().int('must be a whole number of seconds').positive('must be at least 1 second');

const tierEntrySchema = z.strictObject({
  extends: z.string().regex(tierNamePattern, 'must name a tier in upper case, e.g. HIGH').optional(),
  requiresToken: z.boolean().optional(),
  scopes: z
    .array(z.array(z.string().min(1, 'a scope must not be empty')).min(1, 'each alternative needs at least one scope'))
    .min(1, 'needs at least one alternative, e.g. [[payments:write]]')
    .nullable()
    .optional(),
  minDeviceTrust: z.enum(trustLevels).nullable().optional(),
  maxAuthAgeSeconds: positiveSeconds.nullable().optional(),
  acrValues: z.array(z.string().min(1, 'an acr value must not be empty')).min(1, 'needs at least one acr value, e.g. [aal2]').nullable().optional(),
  maxRiskLevel: z.enum(riskLevels).nullable().optional(),
  requireDpop: z.boolean().optional(),
  maxAttestationAgeSeconds: positiveSeconds.nullable().optional(),
  requireVerifiedRevocation: z.boolean().optional(),
});

type TierEntry = z.infer<typeof tierEntrySchema>;

const policyFileSchema = z.strictObject({
  tiers: z.record(z.string(), tierEntrySchema),
});

/** A policy file that cannot be used; `problems` names the file, the tier and the field of each. */
export class PolicyFileError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid tier policy file:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'PolicyFileError';
  }
}

/** Reads, validates and resolves a policy file; the built-in tiers when `file` is undefined. */
export function loadTierPolicies(file: string | undefined): TierSet {
  if (file === undefined) return tierSet(defaultTiers);
  const label = `TOLLGATE_POLICY_FILE ${file}`;

  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new PolicyFileError([`${label}: cannot read the file (${code}); point TOLLGATE_POLICY_FILE at a readable JSON or YAML file`]);
  }
  return parseTierPolicies(text, file);
}

/** Validates and resolves the text of a policy file; `file` names it in errors and picks the parser. */
export function parseTierPolicies(text: string, file: string): TierSet {
  const label = `TOLLGATE_POLICY_FILE ${file}`;
  const raw = parseText(text, file, label);

  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new PolicyFileError(parsed.error.issues.map((issue) => `${label}: ${describeLocation(issue)}: ${issue.message}`));
  }

  const problems: string[] = [];
  for (const name of Object.keys(parsed.data.tiers)) {
    if (!tierNamePattern.test(name)) problems.push(`${label}: tier "${name}": tier names are upper-case letters, digits and underscores, e.g. PAYOUTS`);
  }
  const resolutionProblems: string[] = [];
  const resolved = resolveTiers(parsed.data.tiers, resolutionProblems);
  for (const problem of resolutionProblems) problems.push(`${label}: ${problem}`);
  for (const tier of resolved) {
    for (const problem of inconsistencies(tier)) problems.push(`${label}: tier "${tier.name}", ${problem}`);
  }
  if (problems.length > 0) throw new PolicyFileError(problems);
  return tierSet(resolved);
}

function parseText(text: string, file: string, label: string): unknown {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new PolicyFileError([`${label}: invalid JSON: ${(error as Error).message}`]);
    }
  }
  if (extension === '.yaml' || extension === '.yml') {
    const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (document.errors.length > 0) {
      throw new PolicyFileError(document.errors.map((error) => `${label}: invalid YAML: ${error.message.split('\n')[0]}`));
    }
    return document.toJS() as unknown;
  }
  throw new PolicyFileError([`${label}: unknown file type "${extension}"; use .json, .yaml or .yml`]);
}

/** Turns a zod issue path such as ["tiers", "HIGH", "scopes", 0] into `tier "HIGH", field "scopes[0]"`. */
function describeLocation(issue: z.core.$ZodIssue): string {
  const [root, tierName, ...fieldPath] = issue.path.map(String);
  const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  if (root !== 'tiers') return `field "${[root, ...unknownKeys].filter(Boolean).join(', ') || 'tiers'}"`;
  if (tierName === undefined) return 'field "tiers"';

  const field = fieldPath.length > 0 ? fieldPath.map((part, index) => (index === 0 ? part : `[${part}]`)).join('') : unknownKeys.join(', ');
  return field ? `tier "${tierName}", field "${field}"` : `tier "${tierName}"`;
}

const requirementKeys = [
  'scopes',
  'minDeviceTrust',
  'maxAuthAgeSeconds',
  'acrValues',
  'maxRiskLevel',
  'requireDpop',
  'maxAttestationAgeSeconds',
  'requireVerifiedRevocation',
] as const;

/**
 * Resolves every tier of the file. A built-in tier starts from its defaults and a new one from "any
 * valid access token", unless `extends` names the tier to start from. Each key of the entry then
 * replaces the inherited value, and `null` removes it.
 */
function resolveTiers(entries: Record<string, TierEntry>, problems: string[]): TierPolicy[] {
  const builtIn = new Map(defaultTiers.map((tier) => [tier.name, tier]));
  const resolved = new Map<string, TierPolicy>();
  const failed = new Set<string>();

  const resolve = (name: string, chain: string[]): TierPolicy | undefined => {
    const done = resolved.get(name);
    if (done) return done;
    if (failed.has(name)) return undefined;
    const entry = entries[name];
    if (!entry) return builtIn.get(name);
    if (chain.includes(name)) {
      problems.push(`tier "${name}", field "extends": tiers extend each other in a cycle (${[...chain, name].join(' -> ')})`);
      for (const member of chain) failed.add(member);
      return undefined;
    }

    let base: PolicyRequirements = builtIn.get(name) ?? { requiresToken: true };
    if (entry.extends !== undefined) {
      const parent = resolve(entry.extends, [...chain, name]);
      if (!parent) {
        failed.add(name);
        if (!entries[entry.extends]) problems.push(`tier "${name}", field "extends": no tier named "${entry.extends}" (known: ${[...new Set([...builtIn.keys(), ...Object.keys(entries)])].join(', ')})`);
        return undefined;
      }
      base = parent;
    }

    const tier = applyEntry(name, base, entry);
    resolved.set(name, tier);
    return tier;
  };

  for (const name of Object.keys(entries)) resolve(name, []);
  const names = new Set([...builtIn.keys(), ...Object.keys(entries)]);
  return [...names].map((name) => resolved.get(name) ?? builtIn.get(name)).filter((tier): tier is TierPolicy => tier !== undefined);
}

function applyEntry(name: string, base: PolicyRequirements, entry: TierEntry): TierPolicy {
  const { name: _inheritedName, ...inherited } = base as TierPolicy;
  const tier: TierPolicy = { ...inherited, name };
  if (entry.requiresToken !== undefined) tier.requiresToken = entry.requiresToken;
  for (const key of requirementKeys) {
    const value = entry[key];
    if (value === undefined) continue;
    if (value === null) delete tier[key];
    else (tier as unknown as Record<string, unknown>)[key] = value;
  }
  return tier;
}

/** Lists requirements of a resolved tier that contradict each other. */
function inconsistencies(tier: TierPolicy): string[] {
  const problems: string[] = [];
  if (!tier.requiresToken) {
    const set = requirementKeys.filter((key) => tier[key] !== undefined && tier[key] !== false);
    if (set.length > 0) problems.push(`field "requiresToken": a tier that needs no token cannot also set ${set.join(', ')}`);
  }
  if (tier.maxAttestationAgeSeconds !== undefined && trustRank(tier.minDeviceTrust ?? 'UNKNOWN') < trustRank('ATTESTED')) {
    problems.push('field "maxAttestationAgeSeconds": needs minDeviceTrust ATTESTED or TRUSTED, since only attested devices have an attestation to renew');
  }
  return problems;
}
