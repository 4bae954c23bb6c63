import { makeExecutableSchema } from '@graphql-tools/schema';
import type { IResolvers } from '@graphql-tools/utils';
import { graphql } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { describe, expect, it } from 'vitest';

import type { CallRule } from '../../src/authz/call-rules.ts';
import { compileFieldPolicies, PolicyCompileError } from '../../src/authz/compile.ts';
import type { Principal } from '../../src/authz/principal.ts';
import { buildShield } from '../../src/authz/rules.ts';
import { defaultTiers, tierSet } from '../../src/authz/tiers.ts';
import { TollgateError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { LogCapture } from '../helpers/harness.ts';
import { contextFor, principal } from './principals.ts';

const directives = `
  directive @public on OBJECT | FIELD_DEFINITION
  directive @authenticated on OBJECT | FIELD_DEFINITION
  directive @requiresScopes(scopes: [[String!]!]!) on OBJECT | FIELD_DEFINITION
  directive @sensitive(tier: String!) on OBJECT | FIELD_DEFINITION
`;

const tiers = tierSet(defaultTiers);

function compileErrors(typeDefs: string): string[] {
  try {
    compileFieldPolicies(makeExecutableSchema({ typeDefs: directives + typeDefs }), tiers);
  } catch (error) {
    if (error instanceof PolicyCompileError) return error.problems;
    throw error;
  }
  return [];
}

describe('compileFieldPolicies', () => {
  it('lists every field without a declaration and every unknown tier at once', () => {
    const problems = compileErrors(`
      type Query { a: String  b: String @sensitive(tier: "SECRET")  c: Thing @public }
      type Thing @sensitive(tier: "TOP") { x: String  y: String @authenticated }
    `);

    expect(problems).toEqual([
      'Query.a: no @public, @authenticated, @requiresScopes or @sensitive on the field or its type',
      'Query.b: @sensitive names unknown tier "SECRET" (known: PUBLIC, LOW, MEDIUM, HIGH, CRITICAL)',
      'Thing: @sensitive names unknown tier "TOP" (known: PUBLIC, LOW, MEDIUM, HIGH, CRITICAL)',
    ]);
  });

  it('rejects @public combined with a token requirement', () => {
    expect(compileErrors('type Query { a: String @public @requiresScopes(scopes: [["x"]]) }')).toEqual(['Query.a: @public cannot be combined with a directive that needs a token']);
  });

  it('rejects an empty scope alternative', () => {
    expect(compileErrors('type Query { a: String @requiresScopes(scopes: [[]]) }')).toEqual(['Query.a: @requiresScopes needs at least one non-empty list of scopes']);
  });

  it('lets field directives replace the type directives', () => {
    const schema = makeExecutableSchema({ typeDefs: `${directives} type Query { t: T @public } type T @sensitive(tier: "HIGH") { a: String  b: String @requiresScopes(scopes: [["x"]]) }` });
    const policies = compileFieldPolicies(schema, tiers);

    expect(policies.get('T.a')).toMatchObject({ declaredOn: 'type', tier: 'HIGH', scopes: undefined });
    expect(policies.get('T.b')).toMatchObject({ declaredOn: 'field', tier: undefined, scopes: [['x']] });
  });
});

interface Harness {
  run(query: string, caller: Principal | null): Promise<{ data: unknown; errors: Array<{ path: unknown; extensions: Record<string, unknown> }> }>;
  logs: LogCapture;
}

function harness(typeDefs: string, resolvers: IResolvers, callRules: Map<string, CallRule[]> = new Map()): Harness {
  const logs = new LogCapture();
  const base = makeExecutableSchema({ typeDefs: directives + typeDefs, resolvers });
  const schema = applyMiddleware(base, buildShield(compileFieldPolicies(base, tiers), tiers, createLogger('debug', logs), callRules));
  return {
    logs,
    async run(query, caller) {
      const result = await graphql({ schema, source: query, contextValue: contextFor(caller) });
      const errors = (result.errors ?? []).map((error) => ({ path: error.path, extensions: error.extensions as Record<string, unknown> }));
      return { data: result.data, errors };
    },
  };
}

describe('buildShield', () => {
  const typeDefs = `
    type Query { open: String @public  low: String @sensitive(tier: "LOW")  high: String @sensitive(tier: "HIGH")  items: [Item!] @public }
    type Item @public { id: ID  owner: String  secret: String @sensitive(tier: "LOW") }
  `;
  const items = [
    { id: '1', owner: principal().userId },
    { id: '2', owner: 'someone else' },
  ];
  const resolvers = {
    Query: { open: () => 'open', low: () => 'low', high: () => 'high', items: () => items },
    Item: { secret: (item: { id: string }) => `secret ${item.id}` },
  };

  it('rejects one field and resolves its siblings', async () => {
    const result = await harness(typeDefs, resolvers).run('{ open low high }', principal());

    expect(result.data).toEqual({ open: 'open', low: 'low', high: null });
    expect(result.errors).toEqual([{ path: ['high'], extensions: expect.objectContaining({ code: 'DEVICE_TRUST_REQUIRED' }) }]);
  });

  it('answers a throwing call rule with INTERNAL_SERVER_ERROR and logs its stack', async () => {
    const broken: CallRule = {
      name: 'broken',
      description: 'throws',
      check: () => {
        throw new Error('ownership lookup exploded');
      },
    };
    const subject = harness(typeDefs, resolvers, new Map([['Query.low', [broken]]]));
    const result = await subject.run('{ open low }', principal());

    expect(result.data).toEqual({ open: 'open', low: null });
    expect(result.errors[0]?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    const logged = subject.logs.events().find((event) => event.msg === 'authorization rule failed');
    expect(logged?.field).toBe('Query.low');
    expect((logged?.err as { stack?: string } | undefined)?.stack).toContain('ownership lookup exploded');
  });

  it('never reports a denial as an internal error', async () => {
    const subject = harness(typeDefs, resolvers);
    const result = await subject.run('{ low high }', null);

    expect(result.errors.map((error) => error.extensions.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect(subject.logs.text()).not.toContain('authorization rule failed');
  });

  it('passes a client error from a call rule through', async () => {
    const badInput: CallRule = { name: 'bad-input', description: 'rejects input', check: () => new TollgateError('BAD_USER_INPUT', 'id: malformed', { field: 'id' }) };
    const result = await harness(typeDefs, resolvers, new Map([['Query.low', [badInput]]])).run('{ low }', principal());

    expect(result.errors[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'id' });
  });

  it('runs call rules on every call with its own parent', async () => {
    const seen: string[] = [];
    const ownItems: CallRule = {
      name: 'own-items',
      description: 'the item belongs to the caller',
      check: ({ parent, context }) => {
        const item = parent as { id: string; owner: string };
        seen.push(item.id);
        return item.owner === context.auth.principal?.userId ? undefined : new TollgateError('FORBIDDEN');
      },
    };
    const result = await harness(typeDefs, resolvers, new Map([['Item', [ownItems]]])).run('{ items { id secret } }', principal());

    expect(result.data).toEqual({ items: [{ id: '1', secret: 'secret 1' }, { id: null, secret: null }] });
    expect(result.errors.map((error) => error.path)).toEqual([
      ['items', 1, 'id'],
      ['items', 1, 'secret'],
    ]);
    expect(seen.sort()).toEqual(['1', '1', '2', '2']);
  });

  it('decides a principal-only policy once per request', async () => {
    const context = contextFor(principal());
    const base = makeExecutableSchema({ typeDefs: directives + typeDefs, resolvers });
    const schema = applyMiddleware(base, buildShield(compileFieldPolicies(base, tiers), tiers, createLogger('silent', new LogCapture())));

    await graphql({ schema, source: '{ items { secret } a: low b: low }', contextValue: context });

    expect([...context.ruleResults.keys()].sort()).toEqual(['public', 'tier:LOW']);
    expect([...context.ruleResults.values()].map((entry) => entry.tokenId)).toEqual(['token-1', 'token-1']);
  });
});
