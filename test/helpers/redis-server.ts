import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

import { Redis } from 'ioredis';

/**
 * A private redis-server on a loopback port, for tests that stop, restart or flush Redis without
 * touching the shared one other test files use. Nothing is kept on disk.
 */
export class TestRedisServer {
  private process: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestRedisServer> {
    const server = new TestRedisServer(await freePort());
    await server.restart();
    return server;
  }

  /** Starts the server (again) on the same port, empty. */
  async restart(): Promise<void> {
    if (this.process) throw new Error('redis-server is already running');
    this.process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'], { stdio: 'ignore' });
    await this.waitUntilReady();
  }

  /** Stops the server; clients connected to it see the connection close. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  async flushAll(): Promise<void> {
    await this.withClient((client) => client.flushall());
  }

  async withClient<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    // Connection failures reach the caller through connect(); the event would otherwise be unhandled.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await this.withClient((client) => client.ping());
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes; returns the elapsed milliseconds. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await condition()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
