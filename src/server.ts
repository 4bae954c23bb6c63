import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import { makeExecutableSchema } from '@graphql-tools/schema';
import Fastify, {
  LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteHandlerMethod } from 'fastify';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';

import type { Principal } from './authz/principal.ts';
import { compileFieldPolicies, type FieldPolicy } from './authz/compile.ts';
import type { CallRuleSet } from './authz/call-rules.ts';
import { defaultCallRules } from './authz/default-call-rules.ts';
import { applyRuleTree } from './authz/apply.ts';
import { buildRuleTree, buildShield } from './authz/rules.ts';
import { defaultTiers, tierSet, type TierSet } from './authz/tiers.ts';
import type { RequestContext } from './context.ts';
import { httpFactsOf } from './devices/dpop.ts';
import { codeOf, httpStatusOf, isTollgateError, TollgateError, wwwAuthenticateFor, type ErrorCode } from './errors.ts';
import { apolloHardeningOptions, graphqlHttpGuard } from './hardening/index.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { resolvers } from './resolvers/index.ts';
import { riskFactsReader } from './risk/facts.ts';
import { riskFieldGuard } from './risk/field-guard.ts';
import type { Services } from './services.ts';
import { formatRequestError, registerHttpErrorHandlers, requestErrorCodes } from './request-errors.ts';
import { readinessOf } from './store/readiness.ts';

export const schemaPath = fileURLToPath(new URL('../schema.graphql', import.meta.url));

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface GatewayOptions {
  services: Services;
  /** Tier policies; the built-in defaults when omitted. */
  tiers?: TierSet;
  /** Rules that read a call's parent or arguments (ownership); the sample domain's when omitted. */
  callRules?: CallRuleSet;
  typeDefs?: string;
}

export interface Gateway {
  app: FastifyInstance;
  apollo: ApolloServer<RequestContext>;
  policies: Map<string, FieldPolicy>;
  metrics: Metrics;
}


export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { services } = options;
  const { logger, config } = services;
  const tiers = options.tiers ?? tierSet(defaultTiers);
  const typeDefs = options.typeDefs ?? readFileSync(schemaPath, 'utf8');

  const baseSchema = makeExecutableSchema({ typeDefs, resolvers });
  const policies = compileFieldPolicies(baseSchema, tiers);
  const schema = authorize(baseSchema, policies, tiers, options.callRules ?? defaultCallRules, services);
  const riskFactsOf = riskFactsReader(config);
  const metrics = createMetrics(services);

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request at info level would dominate the log under load. Rejections and errors
    // are logged where they happen, and /metrics counts every request.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    bodyLimit: 256 * 1024,
  });
  app.decorateRequest('principal', null);
  registerHttpErrorHandlers(app, logger);
  // The Date header (RFC 9110 §6.6.1) comes from the clock that stamps iat and exp, so a client can
  // measure its clock offset against the times in its tokens.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('date', services.clock.now().toUTCString());
  });

  const apollo = new ApolloServer<RequestContext>({
    schema,
    ...apolloHardeningOptions(config.hardening),
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    formatError: (formatted, error) => formatError(formatted, error, services),
    plugins: [fastifyApolloDrainPlugin(app), wholeOperationStatusPlugin(), metrics.apolloPlugin],
  });
  await apollo.start();

  app.addHook('onResponse', async (request, reply) => {
    metrics.observeHttp(request, reply);
  });

  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    preValidation: graphqlHttpGuard(config.hardening),
    preHandler: (request, reply) => authenticateRequest(request, reply, services, metrics),
    handler: fastifyApolloHandler(apollo, {
      context: async (request): Promise<RequestContext> => ({
        requestId: request.id,
        clock: services.clock,
        logger: request.log as RequestContext['logger'],
        services,
        facts: { ip: request.ip, userAgent: request.headers['user-agent'], http: httpFactsOf(request), ...riskFactsOf(request) },
        auth: { principal: request.principal },
        ruleResults: new Map(),
        loaded: new Map(),
      }),
    }) as RouteHandlerMethod,
  });

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // Shorter than the key overlap, so a cached set always contains the key of any live token.
    const maxAge = Math.max(60, Math.floor(config.accessTokenTtlSeconds / 2));
    return reply.header('cache-control', `public, max-age=${maxAge}`).send(services.ring.jwks());
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const readiness = await readinessOf(services);
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });

  app.get('/metrics', async (_request, reply) => reply.header('content-type', metrics.contentType).send(await metrics.render()));

  return { app, apollo, policies, metrics };
}

/**
 * Applies the field rules and the risk guard. The risk guard runs inside the rules: a field is
 * assessed only once its policy allowed it.
 */
function authorize(baseSchema: GraphQLSchema, policies: Map<string, FieldPolicy>, tiers: TierSet, callRules: CallRuleSet, services: Services): GraphQLSchema {
  const { config, logger } = services;
  const riskGuard = riskFieldGuard(policies, config.risk.assessedTiers, services.risk);
  if (config.authzEngine === 'shield') {
    return applyMiddleware(baseSchema, buildShield(policies, tiers, logger, callRules), riskGuard);
  }
  const { tree, options } = buildRuleTree(policies, tiers, logger, callRules);
  return applyRuleTree(applyMiddleware(baseSchema, riskGuard), tree, options);
}

/**
 * Authenticates before GraphQL runs. A request without credentials continues anonymously; one with a
 * bad, expired or revoked token is refused whole with 401 and an RFC 6750 challenge.
 */
async function authenticateRequest(request: FastifyRequest, reply: FastifyReply, services: Services, metrics: Metrics): Promise<void> {
  if (request.method === 'OPTIONS') return;
  // RFC 9449 §8.2: with server nonces on, every response carries the nonce the next proof must use.
  if (services.dpop.nonceRequired) reply.header('dpop-nonce', services.dpop.currentNonce());
  try {
    request.principal = await services.authenticator.authenticate({ authorization: request.headers.authorization, http: httpFactsOf(request) });
  } catch (error) {
    const refusal = isTollgateError(error) ? error : unexpected(error, request, services);
    metrics.authFailures.inc({ code: refusal.code });
    request.log.info({ code: refusal.code, requestId: request.id }, 'request authentication rejected');
    const scheme = /^dpop\s/i.test(request.headers.authorization ?? '') ? 'DPoP' : 'Bearer';
    const challenge = wwwAuthenticateFor(refusal.code, refusal.extensions, scheme);
    if (challenge) reply.header('www-authenticate', challenge);
    await reply
      .code(refusal.status)
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send({ errors: [{ message: refusal.message, extensions: { ...refusal.extensions } }] });
  }
}

function unexpected(error: unknown, request: FastifyRequest, services: Services): TollgateError {
  const code: ErrorCode = (error as { code?: string })?.code === 'ECONNREFUSED' ? 'SERVICE_UNAVAILABLE' : 'INTERNAL_SERVER_ERROR';
  services.logger.error({ err: error, requestId: request.id }, 'request authentication failed unexpectedly');
  return new TollgateError(code, undefined, code === 'SERVICE_UNAVAILABLE' ? { retryAfterSeconds: 1 } : {});
}

/** Keeps client-actionable errors as they are and hides every other error behind a generic one. */
function formatError(formatted: GraphQLFormattedError, error: unknown, services: Services): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  if (isTollgateError(original)) {
    if (original.code === 'INTERNAL_SERVER_ERROR') return { ...formatted, message: original.message, extensions: { code: original.code } };
    return formatted;
  }
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && requestErrorCodes.has(code)) return formatRequestError(formatted, code);
  services.logger.error({ err: original, path: formatted.path }, 'resolver failed');
  return { message: 'Internal server error.', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Sets the HTTP status and `WWW-Authenticate` header from the first rejection's code when every root
 * field of an operation was rejected. Partial results keep status 200.
 */
function wholeOperationStatusPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (!errors || errors.length === 0) return;

          const rootErrors = errors.filter((error) => error.path?.length === 1 && codeOf(error) !== undefined);
          const refusedRoots = new Set(rootErrors.map((error) => error.path?.[0]));
          const allRefused = data === null || data === undefined ? rootErrors.length > 0 : Object.entries(data).every(([key, value]) => value === null && refusedRoots.has(key));
          if (!allRefused) return;

          const first = rootErrors[0];
          const code = codeOf(first);
          if (!first || !code) return;
          response.http.status = httpStatusOf(code);
          // RFC 9449 §7.1: a request made with a DPoP-bound token is challenged with the DPoP scheme.
          const challenge = wwwAuthenticateFor(code, first.extensions ?? {}, contextValue.auth.principal?.tokenType ?? 'Bearer');
          if (challenge) response.http.headers.set('www-authenticate', challenge);
          const retryAfter = first.extensions?.retryAfterSeconds;
          if (typeof retryAfter === 'number') response.http.headers.set('retry-after', String(retryAfter));
        },
      };
    },
  };
}
