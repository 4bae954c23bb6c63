// One gateway process for the benchmarks, started by bench/run.ts. `tollgate` runs the real gateway
// on PostgreSQL and Redis. `baseline` runs plain Apollo Server 5 on Fastify with the same schema and
// resolvers and no authentication. The process reports its port and, on request, its resident memory.
import { readFileSync } from 'node:fs';

import { ApolloServer } from '@apollo/server';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import { makeExecutableSchema } from '@graphql-tools/schema';
import Fastify, { type RouteHandlerMethod } from 'fastify';

import { startTollgate } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import type { RequestContext } from '../src/context.ts';
import { createLogger } from '../src/logger.ts';
import { resolvers } from '../src/resolvers/index.ts';
import { schemaPath } from '../src/server.ts';

type Message = { type: 'memory' } | { type: 'stop' };

const mode = process.argv[2];
const send = (message: unknown) => process.send?.(message);

async function startBaseline(): Promise<{ port: number; stop: () => Promise<void> }> {
  const app = Fastify();
  const schema = makeExecutableSchema({ typeDefs: readFileSync(schemaPath, 'utf8'), resolvers });
  const apollo = new ApolloServer<RequestContext>({ schema, plugins: [fastifyApolloDrainPlugin(app)] });
  await apollo.start();
  // The principal a valid token would carry, fixed: the baseline does the same resolver work
  // without authenticating anyone.
  const principal = {
    userId: '00000000-0000-4000-8000-000000000001',
    sessionId: '00000000-0000-4000-8000-000000000002',
    deviceId: '00000000-0000-4000-8000-000000000003',
    scopes: new Set<string>(),
    acr: 'aal1',
    amr: ['pwd'],
    authTime: 0,
    issuedAt: 0,
    expiresAt: 0,
    tokenId: 'baseline',
    tokenType: 'Bearer' as const,
    jkt: undefined,
    dpopVerified: false,
    deviceTrust: 'BASIC' as const,
    riskLevel: 'LOW' as const,
  };
  app.route({
    url: '/graphql',
    method: ['GET', 'POST'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request) =>
        ({ requestId: request.id, clock: systemClock, auth: { principal }, ruleResults: new Map(), loaded: new Map() }) as unknown as RequestContext,
    }) as RouteHandlerMethod,
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { port: Number(new URL(address).port), stop: () => apollo.stop() };
}

async function startGateway(): Promise<{ port: number; stop: () => Promise<void> }> {
  const config = loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  const tollgate = await startTollgate({ config, logger: createLogger(config.logLevel), migrate: false });
  const address = await tollgate.gateway.app.listen({ host: '127.0.0.1', port: 0 });
  return { port: Number(new URL(address).port), stop: () => tollgate.close() };
}

const server = mode === 'baseline' ? await startBaseline() : await startGateway();
send({ type: 'ready', port: server.port });

process.on('message', async (message: Message) => {
  if (message.type === 'memory') {
    (globalThis as { gc?: () => void }).gc?.();
    send({ type: 'memory', rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
  }
  if (message.type === 'stop') {
    await server.stop();
    process.exit(0);
  }
});
