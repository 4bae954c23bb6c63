import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, parse, type ValidationContext, type ValidationRule } from 'graphql';

import type { HardeningConfig } from '../risk/config.ts';
import { countLimitedCallsInDocument, maxLimitedCallsRule } from './limited-calls.ts';

export { countLimitedCalls, limitedMutations, maxLimitedCallsRule } from './limited-calls.ts';

/**
 * GraphQL hardening: limits enforced while the document is parsed and validated, before any
 * resolver runs, and HTTP rules checked before Apollo Server handles the request.
 */

/**
 * GraphQL Armor's rules throw on rejection by default, which graphql-js passes out of `validate`
 * as a crash. Reported through the context instead, they become ordinary validation errors (400).
 */
function reportThroughContext(context: ValidationContext | null, error: GraphQLError): void {
  context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, '')));
}

const armorCallbacks = { propagateOnRejection: false, onReject: [reportThroughContext], exposeLimits: true };

/** Validation rules for depth, aliases, cost, directives and rate-limited calls; fragments are expanded. */
export function hardeningValidationRules(config: HardeningConfig): ValidationRule[] {
  return [
    maxDepthRule({ n: config.maxDepth, flattenFragments: true, ...armorCallbacks }),
    maxAliasesRule({ n: config.maxAliases, ...armorCallbacks }),
    costLimitRule({ maxCost: config.maxCost, ...armorCallbacks }),
    maxDirectivesRule({ n: config.maxDirectives, ...armorCallbacks }),
    maxLimitedCallsRule(config.maxLimitedCalls),
  ] as unknown as ValidationRule[];
}

/** Apollo Server options that carry the hardening settings. */
export function apolloHardeningOptions(config: HardeningConfig) {
  return {
    validationRules: hardeningValidationRules(config),
    // graphql-js stops parsing past this many tokens, before a large document costs validation time.
    parseOptions: { maxTokens: config.maxTokens },
    // No "Did you mean ...?" suggestions: they let a client map the schema without introspection.
    hideSchemaDetailsFromClientErrors: true,
    introspection: config.introspection,
    allowBatchedHttpRequests: config.batching,
  };
}

function reject(reply: FastifyReply, status: number, message: string, headers: Record<string, string> = {}) {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ errors: [{ message, extensions: { code: 'BAD_USER_INPUT', reason: 'BAD_REQUEST' } }] });
}

/**
 * Fastify `preValidation` hook of `/graphql`. A POST body must be JSON, because a `text/plain` post
 * is a CSRF "simple request": it gets 415 even with a preflight header. A batch must be enabled and
 * no longer than `maxBatch`, and all its operations together may call rate-limited mutations at
 * most `maxLimitedCalls` times.
 */
export function graphqlHttpGuard(config: HardeningConfig) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.method !== 'POST') return;

    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json') {
      await reject(reply, 415, `POST /graphql needs Content-Type application/json, got "${contentType || 'none'}".`, { accept: 'application/json' });
      return;
    }

    if (!Array.isArray(request.body)) return;
    if (!config.batching) {
      await reject(reply, 400, 'Batched requests are disabled: send one operation per request.');
      return;
    }
    if (request.body.length > config.maxBatch) {
      await reject(reply, 400, `A batch may hold at most ${config.maxBatch} operations, got ${request.body.length}.`);
      return;
    }
    const limitedCalls = request.body.reduce((sum: number, piece: unknown) => sum + limitedCallsOf(piece, config.maxTokens), 0);
    if (limitedCalls > config.maxLimitedCalls) {
      await reject(reply, 400, `The batch calls rate-limited mutations ${limitedCalls} times; at most ${config.maxLimitedCalls} per request.`);
    }
  };
}

/** Counts one batch entry's limited calls. An entry that does not parse counts 0, and Apollo rejects it. */
function limitedCallsOf(piece: unknown, maxTokens: number): number {
  const { query, operationName } = (piece ?? {}) as { query?: unknown; operationName?: unknown };
  if (typeof query !== 'string') return 0;
  try {
    return countLimitedCallsInDocument(parse(query, { maxTokens }), typeof operationName === 'string' ? operationName : undefined);
  } catch {
    return 0;
  }
}
