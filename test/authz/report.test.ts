import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { makeExecutableSchema } from '@graphql-tools/schema';
import { describe, expect, it } from 'vitest';

import type { CallRule } from '../../src/authz/call-rules.ts';
import { defaultCallRules } from '../../src/authz/default-call-rules.ts';
import { buildPolicyReport, formatPolicyTable, type PolicyRow } from '../../src/authz/report.ts';
import { defaultTiers, tierSet } from '../../src/authz/tiers.ts';

/**
 * Fields whose own declaration is deliberately weaker than their type's, each with the reason. A
 * field overriding its type with a weaker policy fails the first test below until it is added here,
 * so every weakening is reviewed as a change to this list.
 */
const intentionallyWeaker = new Map<string, string>([]);

const tiers = tierSet(defaultTiers);
const schemaText = readFileSync(fileURLToPath(new URL('../../schema.graphql', import.meta.url)), 'utf8');
const directives = schemaText.slice(0, schemaText.indexOf('"An ISO 8601'));

function report(typeDefs: string, callRules = new Map<string, CallRule[]>()): Map<string, PolicyRow> {
  const rows = buildPolicyReport(makeExecutableSchema({ typeDefs }), tiers, callRules);
  return new Map(rows.map((row) => [`${row.type}.${row.field}`, row]));
}

describe('policy report of schema.graphql', () => {
  const rows = report(schemaText, defaultCallRules as Map<string, CallRule[]>);

  it('has no field weaker than its type unless listed', () => {
    const weaker = [...rows.values()].filter((row) => row.weakerThanType.length > 0).map((row) => `${row.type}.${row.field}`);

    expect(weaker.filter((coordinate) => !intentionallyWeaker.has(coordinate))).toEqual([]);
  });

  it('lists only fields that are still weaker', () => {
    const stale = [...intentionallyWeaker.keys()].filter((coordinate) => (rows.get(coordinate)?.weakerThanType.length ?? 0) === 0);

    expect(stale).toEqual([]);
  });

  it('keeps the sample domain free of refusable non-null fields', () => {
    const domainTypes = ['PaymentMethod', 'Transaction', 'TransactionConnection', 'TransactionEdge', 'PageInfo', 'TotpEnrollment'];
    const domainFields = ['myTransactions', 'transaction', 'myPaymentMethods', 'updateProfile', 'addPaymentMethod', 'changeEmail', 'changePassword', 'makePayment', 'deleteAccount', 'enrollTotp', 'confirmTotp'];
    const flagged = [...rows.values()].filter((row) => row.refusableNonNull && (domainTypes.includes(row.type) || domainFields.includes(row.field)));

    expect(flagged.map((row) => `${row.type}.${row.field}`)).toEqual([]);
  });

  it('flags stepUp, which the public contract fixes as non-null', () => {
    expect(rows.get('Mutation.stepUp')?.refusableNonNull).toBe(true);
  });

  it('reports the combined scopes and the tier of a field', () => {
    expect(rows.get('Mutation.changeEmail')).toMatchObject({ tier: 'HIGH', scopes: [['account']], acrValues: ['aal2'], maxAuthAgeSeconds: 900, requiresToken: true });
  });

  it('reports the call rules of a type on each of its fields', () => {
    expect(rows.get('Transaction.amountCents')?.callRules).toEqual(['transaction-owner']);
  });
});

describe('policy report checks', () => {
  const typeDefs = `${directives}
    type Query { account: Account @sensitive(tier: "LOW")  open: Open @public  token: String! @authenticated }
    type Account @sensitive(tier: "HIGH") {
      balance: Int
      nickname: String @sensitive(tier: "LOW")
      limits: String @requiresScopes(scopes: [["limits"]])
      audit: String @sensitive(tier: "CRITICAL")
      id: ID!
    }
    type Open @public { id: ID!  secret: String! @sensitive(tier: "LOW") }
  `;
  const rows = report(typeDefs);

  it('flags a field weaker than its type with the requirements it drops', () => {
    expect(rows.get('Account.nickname')?.weakerThanType).toEqual(['minDeviceTrust', 'maxAuthAgeSeconds', 'acrValues', 'requireVerifiedRevocation']);
  });

  it('flags a scope-only override of a tier as weaker', () => {
    expect(rows.get('Account.limits')?.weakerThanType).toContain('acrValues');
  });

  it('accepts a field stronger than its type', () => {
    expect(rows.get('Account.audit')?.weakerThanType).toEqual([]);
  });

  it('flags a non-null field stricter than a field that returns its type', () => {
    expect(rows.get('Account.id')?.refusableNonNull).toBe(true);
    expect(rows.get('Open.secret')?.refusableNonNull).toBe(true);
  });

  it('does not flag a non-null field its parent field already protects', () => {
    expect(rows.get('Open.id')?.refusableNonNull).toBe(false);
  });

  it('flags a refusable non-null root field', () => {
    expect(rows.get('Query.token')?.refusableNonNull).toBe(true);
  });

  it('flags a non-null field with a call rule', () => {
    const rule: CallRule = { name: 'owner', description: 'owns it', check: () => undefined };

    expect(report(typeDefs, new Map([['Open', [rule]]])).get('Open.id')?.refusableNonNull).toBe(true);
  });

  it('prints a table with one line per field and a summary', () => {
    const table = formatPolicyTable([...rows.values()]);
    const lines = table.split('\n');

    expect(lines[0]).toMatch(/^type +field +declared on +tier +scopes +token +min trust +max auth age +acr/);
    expect(lines).toHaveLength(rows.size + 4);
    expect(lines.at(-1)).toBe(`${rows.size} fields; 3 refusable non-null; 2 weaker than their type`);
  });
});
