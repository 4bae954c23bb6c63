import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PolicyCompileError } from '../../src/authz/compile.ts';
import { createGateway, schemaPath } from '../../src/server.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { writeTempFile } from './support.ts';

const run = promisify(execFile);

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

async function compileProblems(extension: string): Promise<string[]> {
  const typeDefs = `${readFileSync(schemaPath, 'utf8')}\n${extension}`;
  try {
    await createGateway({ services: gateway.tollgate.services, typeDefs });
  } catch (error) {
    if (error instanceof PolicyCompileError) return error.problems;
    throw error;
  }
  throw new Error('expected start-up to fail');
}

describe('start-up', () => {
  it('fails listing every undeclared field and unknown tier', async () => {
    const problems = await compileProblems(`
      extend type Query { leak: String  other: String  vault: String @sensitive(tier: "VAULT") }
      type Orphan @sensitive(tier: "NOWHERE") { a: String }
    `);

    expect(problems).toEqual([
      'Query.leak: no @public, @authenticated, @requiresScopes or @sensitive on the field or its type',
      'Query.other: no @public, @authenticated, @requiresScopes or @sensitive on the field or its type',
      'Query.vault: @sensitive names unknown tier "VAULT" (known: PUBLIC, LOW, MEDIUM, HIGH, CRITICAL)',
      'Orphan: @sensitive names unknown tier "NOWHERE" (known: PUBLIC, LOW, MEDIUM, HIGH, CRITICAL)',
    ]);
  });

  it('accepts a custom tier from the policy file', async () => {
    const file = writeTempFile('vault.yaml', 'tiers:\n  VAULT:\n    extends: HIGH\n    scopes: [[vault]]\n');
    const custom = await startTestGateway({ env: { TOLLGATE_POLICY_FILE: file } });
    try {
      const typeDefs = `${readFileSync(schemaPath, 'utf8')}\nextend type Query { vault: String @sensitive(tier: "VAULT") }`;
      const extra = await createGateway({ services: custom.tollgate.services, tiers: custom.config.tiers, typeDefs });

      expect(extra.policies.get('Query.vault')?.tier).toBe('VAULT');
      await extra.apollo.stop();
    } finally {
      await custom.close();
    }
  });

  it('rejects a policy file before opening any store', async () => {
    const file = writeTempFile('bad.yaml', 'tiers:\n  HIGH:\n    maxAuthAgeSeconds: "15m"\n');

    await expect(startTestGateway({ env: { TOLLGATE_POLICY_FILE: file } })).rejects.toThrow(`TOLLGATE_POLICY_FILE ${file}: tier "HIGH", field "maxAuthAgeSeconds"`);
  });

  it('stops the process with the file, tier and field named', async () => {
    const file = writeTempFile('process.json', JSON.stringify({ tiers: { CRITICAL: { requireDpop: 'yes' } } }));
    const failure = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, TOLLGATE_POLICY_FILE: file, DATABASE_URL: '', REDIS_URL: '' }, timeout: 20_000 }).catch(
      (error: { code: number; stderr: string }) => error,
    );

    expect('code' in failure ? failure.code : 0).toBe(2);
    expect('stderr' in failure ? failure.stderr : '').toContain(`TOLLGATE_POLICY_FILE ${file}: tier "CRITICAL", field "requireDpop"`);
  });
});
