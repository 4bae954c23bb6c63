import type { ApolloServerPlugin } from '@apollo/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { RequestContext } from './context.ts';
import { codeOf } from './errors.ts';
import type { Services } from './services.ts';

export interface Metrics {
  contentType: string;
  render(): Promise<string>;
  observeHttp(request: FastifyRequest, reply: FastifyReply): void;
  authFailures: Counter<'code'>;
  apolloPlugin: ApolloServerPlugin<RequestContext>;
}

/** Prometheus metrics for `GET /metrics`; one registry per gateway, so tests can start several. */
export function createMetrics(services: Services): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tollgate_' });

  const requests = new Histogram({
    name: 'tollgate_http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by route and status.',
    labelNames: ['route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const authFailures = new Counter({ name: 'tollgate_authentication_failures_total', help: 'Requests rejected at authentication, by error code.', labelNames: ['code'], registers: [registry] });
  const graphqlErrors = new Counter({ name: 'tollgate_graphql_errors_total', help: 'GraphQL errors sent to clients, by error code.', labelNames: ['code'], registers: [registry] });
  new Gauge({
    name: 'tollgate_verified_token_cache_entries',
    help: 'Access tokens whose verification is cached.',
    registers: [registry],
    collect() {
      this.set(services.access.cachedCount);
    },
  });

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeHttp(request, reply) {
      const route = request.routeOptions.url ?? 'unmatched';
      requests.observe({ route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    },
    authFailures,
    apolloPlugin: {
      async requestDidStart() {
        return {
          async didEncounterErrors({ errors }) {
            for (const error of errors) graphqlErrors.inc({ code: codeOf(error) ?? String(error.extensions?.code ?? 'UNKNOWN') });
          },
        };
      },
    },
  };
}
