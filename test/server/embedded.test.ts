import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultDevice } from '../helpers/flows.ts';

let child: ChildProcess;
let dataDir: string;
let baseUrl: string;
let output = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'tollgate-embedded-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ARGON2_MEMORY_KIB: '1024', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.TOLLGATE_MASTER_KEY;
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  const deadline = Date.now() + 45_000;
  while (!output.includes('tollgate listening')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`embedded gateway did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
});

async function graphql(query: string, variables: Record<string, unknown> = {}, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${baseUrl}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, body: (await response.json()) as { data?: Record<string, any>; errors?: unknown[] } };
}

describe('embedded mode', () => {
  it('says so in its log', () => {
    expect(output).toContain('embedded mode: PGlite');
    expect(output).toContain('embedded mode: in-memory state store');
  });

  it('serves sign-up and me end to end', async () => {
    const signUp = await graphql('mutation($input: SignUpInput!) { signUp(input: $input) { ... on AuthSuccess { tokens { accessToken } user { id } } } }', {
      input: { email: 'embedded@example.com', password: 'embedded password 1', device: defaultDevice },
    });
    const accessToken = signUp.body.data?.signUp?.tokens?.accessToken as string;
    const me = await graphql('{ me { id email } }', {}, accessToken);

    expect(me.status).toBe(200);
    expect(me.body.data?.me).toEqual({ id: signUp.body.data?.signUp?.user?.id, email: 'embedded@example.com' });
  });

  it('keeps its data and master key under the data folder', async () => {
    expect((await stat(path.join(dataDir, 'master.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dataDir, 'pglite'))).isDirectory()).toBe(true);
  });

  it('reports ready and publishes its signing keys', async () => {
    const ready = await fetch(`${baseUrl}/readyz`);
    const jwks = (await (await fetch(`${baseUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ kty: string; d?: string }> };

    expect(ready.status).toBe(200);
    expect(jwks.keys.length).toBeGreaterThanOrEqual(2);
    expect(jwks.keys.every((key) => key.kty === 'EC' && key.d === undefined)).toBe(true);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');

    expect(await exited).toBe(0);
  });
});
