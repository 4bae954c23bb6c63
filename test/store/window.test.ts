import { randomUUID } from 'node:crypto';

import { afterAll, describe, expect, it } from 'vitest';

import { createLogger } from '../../src/logger.ts';
import { MemoryStateStore, RedisStateStore, type StateStore } from '../../src/store/state.ts';
import { testRedisUrl } from '../helpers/env.ts';

const redis = new RedisStateStore(testRedisUrl, `tgtest:window:${randomUUID()}:`, createLogger('silent'));
const memory = new MemoryStateStore();

afterAll(async () => {
  await redis.close();
  await memory.close();
});

describe.each([
  ['redis', redis as StateStore],
  ['memory', memory as StateStore],
])('%s sliding window', (_kind, state) => {
  const start = 1_800_000_000_000;

  it('counts events inside the window', async () => {
    const key = `w:${randomUUID()}`;
    await state.windowAdd(key, 'a', start, 60);
    await state.windowAdd(key, 'b', start + 30_000, 60);

    expect(await state.windowCount(key, start + 30_000, 60)).toBe(2);
  });

  it('drops an event exactly at the window edge', async () => {
    const key = `w:${randomUUID()}`;
    await state.windowAdd(key, 'a', start, 60);

    expect(await state.windowCount(key, start + 59_999, 60)).toBe(1);
    expect(await state.windowCount(key, start + 60_000, 60)).toBe(0);
  });

  it('counts a repeated member once', async () => {
    const key = `w:${randomUUID()}`;
    await state.windowAdd(key, 'account-1', start, 60);

    expect(await state.windowAdd(key, 'account-1', start + 1000, 60)).toBe(1);
    expect(await state.windowAdd(key, 'account-2', start + 2000, 60)).toBe(2);
  });

  it('keeps at most maxMembers, newest first', async () => {
    const key = `w:${randomUUID()}`;
    for (let index = 0; index < 5; index += 1) await state.windowAdd(key, `m${index}`, start + index, 60, 3);

    expect(await state.windowCount(key, start + 5, 60)).toBe(3);
  });
});
