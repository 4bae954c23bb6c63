import { EventEmitter } from 'node:events';

import { Redis } from 'ioredis';

import type { Logger } from '../logger.ts';

/**
 * Short-lived shared state: the revocation record, replay caches, counters and the pub/sub channel
 * between gateway instances. Redis in production; an in-memory store for embedded mode, which is
 * correct for one instance only. Keys and channels are prefixed, so tests and deployments can share
 * one Redis server.
 */
export interface StateStore {
  readonly kind: 'redis' | 'memory';
  /** The underlying Redis client, for libraries that speak to Redis themselves. */
  readonly redis: Redis | undefined;
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<Array<string | null>>;
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /** Sets the key only when it does not exist; returns whether it was set. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Writes several keys in one round trip. */
  setMany(entries: Array<{ key: string; value: string; ttlSeconds: number }>): Promise<void>;
  del(key: string): Promise<void>;
  /**
   * Records `member` at `nowMs` in the sliding window `key` and returns how many distinct members
   * were recorded within the last `windowSeconds`. A unique member per call counts events; a stable
   * member (an account id) counts distinct values. The window keeps at most `maxMembers`, newest first.
   */
  windowAdd(key: string, member: string, nowMs: number, windowSeconds: number, maxMembers?: number): Promise<number>;
  /** Returns how many distinct members the sliding window `key` recorded within the last `windowSeconds`. */
  windowCount(key: string, nowMs: number, windowSeconds: number): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  ping(): Promise<boolean>;
  /** Whether commands and broadcasts flow now; false while a connection is down or reconnecting. */
  isConnected?(): boolean;
  /** Calls `listener` whenever a connection is lost or becomes ready again. */
  onConnectionChange?(listener: (connected: boolean) => void): void;
  close(): Promise<void>;
}

/** Bound on the members one sliding window keeps, so a flood cannot grow a key without limit. */
const defaultWindowMembers = 10_000;

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Array<(message: string) => void>>();

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    // Auto-pipelining batches the commands of concurrent requests into one write, which keeps the
    // per-request revocation check cheap under load.
    this.redis = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false });
    this.redis.on('error', (error) => this.logger.warn({ err: error }, 'Redis connection error'));
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  async get(key: string) {
    return this.redis.get(this.k(key));
  }

  async mget(keys: string[]) {
    if (keys.length === 0) return [];
    return this.redis.mget(keys.map((key) => this.k(key)));
  }

  async set(key: string, value: string, ttlSeconds?: number) {
    if (ttlSeconds === undefined) {
      await this.redis.set(this.k(key), value);
    } else {
      await this.redis.set(this.k(key), value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
    }
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    const result = await this.redis.set(this.k(key), value, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX');
    return result === 'OK';
  }

  async setMany(entries: Array<{ key: string; value: string; ttlSeconds: number }>) {
    if (entries.length === 0) return;
    const pipeline = this.redis.multi();
    for (const entry of entries) {
      pipeline.set(this.k(entry.key), entry.value, 'EX', Math.max(1, Math.ceil(entry.ttlSeconds)));
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  }

  async del(key: string) {
    await this.redis.del(this.k(key));
  }

  async windowAdd(key: string, member: string, nowMs: number, windowSeconds: number, maxMembers = defaultWindowMembers) {
    // A sorted set scored by time: trim what fell out of the window, add, cap, count, in one MULTI.
    // Scores come from the injected clock. The key's TTL only removes windows that stopped
    // receiving events.
    const fullKey = this.k(key);
    const results = await this.redis
      .multi()
      .zremrangebyscore(fullKey, '-inf', nowMs - windowSeconds * 1000)
      .zadd(fullKey, nowMs, member)
      .zremrangebyrank(fullKey, 0, -(maxMembers + 1))
      .zcard(fullKey)
      .pexpire(fullKey, Math.max(1000, Math.ceil(windowSeconds * 1000)))
      .exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    return Number(results?.[3]?.[1] ?? 0);
  }

  async windowCount(key: string, nowMs: number, windowSeconds: number) {
    return this.redis.zcount(this.k(key), `(${nowMs - windowSeconds * 1000}`, '+inf');
  }

  async publish(channel: string, message: string) {
    await this.redis.publish(this.k(channel), message);
  }

  async subscribe(channel: string, handler: (message: string) => void) {
    if (!this.subscriber) {
      this.subscriber = this.redis.duplicate({ enableAutoPipelining: false, maxRetriesPerRequest: null });
      this.subscriber.on('error', (error) => this.logger.warn({ err: error }, 'Redis subscriber connection error'));
      this.subscriber.on('message', (fullChannel: string, message: string) => {
        for (const listener of this.handlers.get(fullChannel) ?? []) listener(message);
      });
    }
    const fullChannel = this.k(channel);
    const listeners = this.handlers.get(fullChannel) ?? [];
    listeners.push(handler);
    this.handlers.set(fullChannel, listeners);
    await this.subscriber.subscribe(fullChannel);
  }

  async ping() {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  isConnected() {
    return this.redis.status === 'ready' && (this.subscriber === undefined || this.subscriber.status === 'ready');
  }

  onConnectionChange(listener: (connected: boolean) => void) {
    for (const client of [this.redis, this.subscriber]) {
      client?.on('ready', () => listener(this.isConnected()));
      client?.on('close', () => listener(false));
    }
  }

  async close() {
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Embedded-mode state: a map with expiry times and an in-process event bus. */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly redis = undefined;
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  /**
   * Sliding windows: member -> time in epoch milliseconds, oldest first. `expiresAt` is on the
   * store's own clock, like a Redis TTL, and only lets the sweeper drop windows that stopped
   * receiving events.
   */
  private readonly windows = new Map<string, { members: Map<string, number>; expiresAt: number }>();
  private readonly bus = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.bus.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  private sweep() {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
    for (const [key, window] of this.windows) {
      if (window.expiresAt <= now) this.windows.delete(key);
    }
  }

  private read(key: string): string | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    return entry.value;
  }

  private write(key: string, value: string, ttlSeconds?: number) {
    this.entries.set(key, { value, expiresAt: ttlSeconds === undefined ? Number.POSITIVE_INFINITY : this.now() + ttlSeconds * 1000 });
  }

  async get(key: string) {
    return this.read(key);
  }

  async mget(keys: string[]) {
    return keys.map((key) => this.read(key));
  }

  async set(key: string, value: string, ttlSeconds?: number) {
    this.write(key, value, ttlSeconds);
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    if (this.read(key) !== null) return false;
    this.write(key, value, ttlSeconds);
    return true;
  }

  async setMany(entries: Array<{ key: string; value: string; ttlSeconds: number }>) {
    for (const entry of entries) this.write(entry.key, entry.value, entry.ttlSeconds);
  }

  async del(key: string) {
    this.entries.delete(key);
    this.windows.delete(key);
  }

  async windowAdd(key: string, member: string, nowMs: number, windowSeconds: number, maxMembers = defaultWindowMembers) {
    const members = this.trimmedWindow(key, nowMs, windowSeconds);
    // Re-inserting moves the member to the end, so the map stays ordered oldest first.
    members.delete(member);
    members.set(member, nowMs);
    for (const oldest of members.keys()) {
      if (members.size <= maxMembers) break;
      members.delete(oldest);
    }
    this.windows.set(key, { members, expiresAt: this.now() + windowSeconds * 1000 });
    return members.size;
  }

  async windowCount(key: string, nowMs: number, windowSeconds: number) {
    return this.trimmedWindow(key, nowMs, windowSeconds).size;
  }

  private trimmedWindow(key: string, nowMs: number, windowSeconds: number): Map<string, number> {
    const members = this.windows.get(key)?.members ?? new Map<string, number>();
    const since = nowMs - windowSeconds * 1000;
    for (const [member, at] of members) {
      if (at <= since) members.delete(member);
    }
    return members;
  }

  async publish(channel: string, message: string) {
    this.bus.emit(channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void) {
    this.bus.on(channel, handler);
  }

  async ping() {
    return true;
  }

  async close() {
    clearInterval(this.sweeper);
    this.bus.removeAllListeners();
  }
}

export function openStateStore(url: string | undefined, prefix: string, logger: Logger): StateStore {
  if (!url) {
    logger.warn('embedded mode: in-memory state store; revocations and rate limits are not shared between instances, set REDIS_URL for production');
    return new MemoryStateStore();
  }
  return new RedisStateStore(url, prefix, logger);
}
