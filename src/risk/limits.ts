import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { StateStore } from '../store/state.ts';
import type { LimiterName, RateLimitSetting } from './config.ts';

/**
 * Fixed-window attempt limits (rate-limiter-flexible): on the state store's Redis client, so every
 * gateway instance shares the counts, or in process in embedded mode. Each call of a limited
 * mutation consumes one point, so aliases and batched operations count one attempt each.
 *
 * NOTE: the windows run on the wall clock of Redis and the process, not on the injected clock.
 */
export class RateLimits {
  private readonly limiters: Record<LimiterName, RateLimiterAbstract>;

  constructor(
    settings: Record<LimiterName, RateLimitSetting>,
    state: StateStore,
    prefix: string,
    private readonly logger: Logger,
  ) {
    const create = (name: LimiterName): RateLimiterAbstract => {
      const options = { keyPrefix: `${prefix}rl:${name}`, points: settings[name].points, duration: settings[name].durationSeconds };
      return state.redis ? new RateLimiterRedis({ ...options, storeClient: state.redis }) : new RateLimiterMemory(options);
    };
    this.limiters = {
      loginAccount: create('loginAccount'),
      loginIp: create('loginIp'),
      signUpIp: create('signUpIp'),
      refreshDevice: create('refreshDevice'),
    };
  }

  /**
   * Consumes one attempt of `name` for `key`. Throws `RATE_LIMITED` with `retryAfterSeconds` once
   * the window's points are spent, and `SERVICE_UNAVAILABLE` when the store cannot be reached:
   * an unlimited sign-in is worse than a retry.
   */
  async consume(name: LimiterName, key: string): Promise<void> {
    try {
      await this.limiters[name].consume(key, 1);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        const retryAfterSeconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
        this.logger.info({ limiter: name, retryAfterSeconds }, 'rate limit reached');
        throw new TollgateError('RATE_LIMITED', `Too many attempts: retry in ${retryAfterSeconds} seconds.`, { retryAfterSeconds });
      }
      this.logger.error({ err: error, limiter: name }, 'rate limiter store failed');
      throw new TollgateError('SERVICE_UNAVAILABLE', undefined, { retryAfterSeconds: 1 });
    }
  }

  /** Forgets the attempts of `key`, e.g. an account's after its owner signed in. */
  async reset(name: LimiterName, key: string): Promise<void> {
    try {
      await this.limiters[name].delete(key);
    } catch (error) {
      this.logger.warn({ err: error, limiter: name }, 'rate limiter reset failed');
    }
  }
}
