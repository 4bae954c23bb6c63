import { randomUUID } from 'node:crypto';

import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { StateStore } from '../store/state.ts';

export interface AttemptLimit {
  /** Attempts allowed within the window. */
  limit: number;
  windowSeconds: number;
}

/** Step-up and TOTP confirmation attempts per session: 5 codes cover typing mistakes, not guessing. */
export const stepUpAttemptLimit: AttemptLimit = { limit: 5, windowSeconds: 300 };

/** Second-factor attempts per login challenge, within the challenge's lifetime. */
export const challengeAttemptLimit: AttemptLimit = { limit: 5, windowSeconds: 300 };

/** The attempt limits in force: the defaults above unless configuration sets others. */
export interface AttemptLimits {
  stepUp: AttemptLimit;
  challenge: AttemptLimit;
}

export function attemptLimitsFrom(settings: { stepUpSession: { points: number; durationSeconds: number }; loginChallenge: { points: number; durationSeconds: number } } | undefined): AttemptLimits {
  if (!settings) return { stepUp: stepUpAttemptLimit, challenge: challengeAttemptLimit };
  return {
    stepUp: { limit: settings.stepUpSession.points, windowSeconds: settings.stepUpSession.durationSeconds },
    challenge: { limit: settings.loginChallenge.points, windowSeconds: settings.loginChallenge.durationSeconds },
  };
}

/**
 * Counts one attempt against `subject` in a sliding window on the injected clock and throws
 * RATE_LIMITED once more than `limit` attempts fell within it. Attempts over the limit still count,
 * so a client that keeps guessing stays limited.
 */
export async function consumeAttempt(deps: { state: StateStore; clock: Clock }, subject: string, limit: AttemptLimit): Promise<void> {
  const nowMs = deps.clock.now().getTime();
  const count = await deps.state.windowAdd(`attempts:${subject}`, randomUUID(), nowMs, limit.windowSeconds, limit.limit + 1);
  if (count > limit.limit) {
    throw new TollgateError('RATE_LIMITED', `Too many attempts: retry in ${limit.windowSeconds} seconds.`, { retryAfterSeconds: limit.windowSeconds });
  }
}
