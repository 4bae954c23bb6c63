import type { CliIo } from '../../src/cli/index.ts';
import { testDatabaseUrl } from './env.ts';
import { testMasterKey, type TestGateway } from './harness.ts';

/** CLI input and output pointed at a test gateway's schema and Redis prefix, as an operator's shell would be. */
export function cliFor(gateway: TestGateway, operator = 'alice'): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const url = new URL(testDatabaseUrl);
  url.searchParams.set('schema', gateway.schema);
  return {
    out,
    err,
    io: {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: url.toString(),
        REDIS_URL: gateway.config.redisUrl,
        TOLLGATE_MASTER_KEY: testMasterKey,
        TOLLGATE_REDIS_PREFIX: gateway.redisPrefix,
        TOLLGATE_OPERATOR: operator,
      },
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
      clock: gateway.clock,
    },
  };
}
