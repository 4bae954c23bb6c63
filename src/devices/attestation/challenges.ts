import { createHash, randomBytes } from 'node:crypto';

import { z } from 'zod';

import type { Clock } from '../../clock.ts';
import type { StateStore } from '../../store/state.ts';
import type { AttestationFailureReason } from './types.ts';

/** The session and device a challenge was issued to; only they may use it. */
export interface ChallengeBinding {
  sessionId: string;
  deviceId: string;
}

export interface IssuedChallenge {
  /** 32 random bytes, base64url without padding (43 characters). */
  challenge: string;
  expiresAt: Date;
}

export type ChallengeProblem = Extract<AttestationFailureReason, 'challenge_unknown' | 'challenge_expired' | 'challenge_reused' | 'challenge_wrong_device'>;

/** A challenge as apps receive it; anything else is rejected before it reaches the state store. */
export const challengePattern = /^[A-Za-z0-9_-]{43}$/;

const recordSchema = z.object({ sessionId: z.string(), deviceId: z.string(), expiresAt: z.number() });

// Keys live a little longer in the state store than the challenge itself, so an expired challenge is
// reported as expired (checked against the injected clock) rather than as unknown.
const retentionMarginSeconds = 60;

function keyOf(challenge: string): string {
  return createHash('sha256').update(challenge).digest('hex');
}

/**
 * Single-use attestation challenges in the state store. A challenge is consumed by its first use,
 * whatever the outcome: the consumed marker is set with SET NX, so of two concurrent uses only one
 * proceeds.
 */
export class AttestationChallenges {
  constructor(
    private readonly state: StateStore,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  async issue(binding: ChallengeBinding): Promise<IssuedChallenge> {
    const challenge = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.clock.now().getTime() + this.ttlSeconds * 1000);
    const record = JSON.stringify({ sessionId: binding.sessionId, deviceId: binding.deviceId, expiresAt: expiresAt.getTime() });
    await this.state.set(`attestation:challenge:${keyOf(challenge)}`, record, this.ttlSeconds + retentionMarginSeconds);
    return { challenge, expiresAt };
  }

  /** Consumes a challenge; returns why it cannot be used, or undefined when it is valid for `binding`. */
  async consume(challenge: string, binding: ChallengeBinding): Promise<ChallengeProblem | undefined> {
    const key = keyOf(challenge);
    const first = await this.state.setIfAbsent(`attestation:consumed:${key}`, '1', this.ttlSeconds + retentionMarginSeconds);
    if (!first) return 'challenge_reused';

    const stored = await this.state.get(`attestation:challenge:${key}`);
    await this.state.del(`attestation:challenge:${key}`);
    const parsed = stored === null ? undefined : recordSchema.safeParse(JSON.parse(stored));
    if (!parsed?.success) return 'challenge_unknown';

    const record = parsed.data;
    if (record.expiresAt <= this.clock.now().getTime()) return 'challenge_expired';
    if (record.sessionId !== binding.sessionId || record.deviceId !== binding.deviceId) return 'challenge_wrong_device';
    return undefined;
  }
}
