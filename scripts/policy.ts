// Prints every field's effective policy: `npm run policy`, or `npm run policy -- --json`.
// Reads schema.graphql and the tier policy file named by TOLLGATE_POLICY_FILE, as start-up does.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { makeExecutableSchema } from '@graphql-tools/schema';

import { PolicyCompileError } from '../src/authz/compile.ts';
import { defaultCallRules } from '../src/authz/default-call-rules.ts';
import { loadTierPolicies, PolicyFileError } from '../src/authz/policy-file.ts';
import { buildPolicyReport, formatPolicyTable } from '../src/authz/report.ts';

const usage = 'usage: npm run policy [-- --json]\nPrints the effective policy of every field of schema.graphql; TOLLGATE_POLICY_FILE selects the tier policy file.';

const args = process.argv.slice(2);
const unknown = args.filter((arg) => arg !== '--json');
if (unknown.length > 0 || args.includes('--help')) {
  console.error(usage);
  process.exit(unknown.length > 0 ? 2 : 0);
}

try {
  const typeDefs = readFileSync(fileURLToPath(new URL('../schema.graphql', import.meta.url)), 'utf8');
  const tiers = loadTierPolicies(process.env.TOLLGATE_POLICY_FILE || undefined);
  const rows = buildPolicyReport(makeExecutableSchema({ typeDefs }), tiers, defaultCallRules);
  console.log(args.includes('--json') ? JSON.stringify(rows, null, 2) : formatPolicyTable(rows));
} catch (error) {
  if (error instanceof PolicyFileError || error instanceof PolicyCompileError) {
    console.error(`policy: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
