import type { RandomSource } from './environment.ts';

export interface RetryPolicy {
  /** Attempts for one request, the first included. Background refresh ignores this and keeps trying. */
  maxAttempts: number;
  /** Cap of the first backoff window; window n is `baseDelayMs * 2^n`. */
  baseDelayMs: number;
  /** Largest backoff window, and the largest wait a `Retry-After` may impose. */
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 60_000 };

/**
 * Exponential backoff with full jitter: a uniform wait in [0, min(max, base * 2^attempt)), so a fleet
 * that failed together does not come back together. `attempt` counts retries from 0.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: RandomSource): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}

/**
 * Returns the wait before the next attempt. A wait the server sets (`Retry-After` or
 * `retryAfterSeconds`) is a lower bound. The jittered backoff is added to it, so clients given the
 * same wait still spread out.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, random: RandomSource, serverWaitMs: number | undefined): number {
  const jitter = backoffDelay(policy, attempt, random);
  if (serverWaitMs === undefined) return jitter;
  return Math.min(policy.maxDelayMs, serverWaitMs) + jitter;
}

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, the latter measured against
 * the response's own `Date` header so the device clock does not matter. Returns milliseconds.
 */
export function parseRetryAfter(header: string | null, dateHeader: string | null): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;

  const until = Date.parse(trimmed);
  const sent = dateHeader ? Date.parse(dateHeader) : Number.NaN;
  if (Number.isNaN(until) || Number.isNaN(sent)) return undefined;
  return Math.max(0, until - sent);
}

/** Reads `extensions.retryAfterSeconds` (RATE_LIMITED, SERVICE_UNAVAILABLE) as milliseconds. */
export function retryAfterFromExtensions(extensions: Record<string, unknown> | undefined): number | undefined {
  const seconds = extensions?.retryAfterSeconds;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return undefined;
  return seconds * 1000;
}
