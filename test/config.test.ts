import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ConfigError, loadConfig } from '../src/config.ts';

const masterKey = Buffer.alloc(32, 7).toString('base64');

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});

    expect(config.port).toBe(4000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.accessTokenTtlSeconds).toBe(300);
    expect(config.clockSkewSeconds).toBe(30);
    expect(config.refreshGraceSeconds).toBe(10);
    expect(config.issuer).toBe('http://127.0.0.1:4000');
    expect(config.audience).toBe('tollgate');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.trustedProxies).toEqual([]);
  });

  it.each([
    ['PORT', 'eighty', 'PORT'],
    ['PORT', '70000', 'PORT'],
    ['TOLLGATE_ACCESS_TOKEN_TTL_SECONDS', '-5', 'TOLLGATE_ACCESS_TOKEN_TTL_SECONDS'],
    ['TOLLGATE_ACCESS_TOKEN_TTL_SECONDS', '86400', 'TOLLGATE_ACCESS_TOKEN_TTL_SECONDS'],
    ['TOLLGATE_REFRESH_GRACE_SECONDS', '1.5', 'TOLLGATE_REFRESH_GRACE_SECONDS'],
    ['DATABASE_URL', 'mysql://localhost/db', 'DATABASE_URL'],
    ['REDIS_URL', 'not a url', 'REDIS_URL'],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL'],
    ['TOLLGATE_MASTER_KEY', Buffer.alloc(16).toString('base64'), 'TOLLGATE_MASTER_KEY'],
  ])('names %s when it is %s', (name, value, expected) => {
    const problems = problemsOf({ [name]: value });

    expect(problems.join('\n')).toContain(expected);
  });

  it('lists every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'loud' });

    expect(problems).toHaveLength(2);
  });

  it('requires a master key with a database', () => {
    const problems = problemsOf({ DATABASE_URL: 'postgresql://127.0.0.1/tollgate' });

    expect(problems[0]).toContain('TOLLGATE_MASTER_KEY');
  });

  it('accepts a database with a 32-byte master key', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://127.0.0.1/tollgate', TOLLGATE_MASTER_KEY: masterKey });

    expect(config.masterKey?.length).toBe(32);
  });

  it('rejects an absolute lifetime shorter than the idle one', () => {
    const problems = problemsOf({ TOLLGATE_SESSION_IDLE_SECONDS: '7200', TOLLGATE_SESSION_ABSOLUTE_SECONDS: '3600' });

    expect(problems[0]).toContain('TOLLGATE_SESSION_ABSOLUTE_SECONDS');
  });

  it('splits trusted proxies', () => {
    const config = loadConfig({ TOLLGATE_TRUSTED_PROXIES: '10.0.0.1, 192.168.0.0/16 ,' });

    expect(config.trustedProxies).toEqual(['10.0.0.1', '192.168.0.0/16']);
  });

  it('accepts every value of .env.example', () => {
    const lines = readFileSync(new URL('../.env.example', import.meta.url), 'utf8').split('\n');
    const env = Object.fromEntries(lines.filter((line) => /^[A-Z0-9_]+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));

    expect(Object.keys(env).length).toBeGreaterThan(40);
    expect(problemsOf(env)).toEqual([]);
  });
});
