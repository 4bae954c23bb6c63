import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { deviceInputSchema, type DeviceInput } from '../devices/registry.ts';
import type { RequestFacts } from '../sessions/service.ts';
import type { StateStore } from '../store/state.ts';

export const stepUpMethods = ['TOTP', 'PASSWORD'] as const;
export type StepUpMethod = (typeof stepUpMethods)[number];

/** What a login returns instead of a session when it needs a second step (GraphQL `StepUpChallenge`). */
export interface StepUpChallenge {
  challengeId: string;
  methods: StepUpMethod[];
  reasons: string[];
  expiresAt: Date;
}

export interface ChallengeRequest {
  userId: string;
  /** The device input of the login; the session started by `completeLogin` runs on this device. */
  device: DeviceInput;
  methods: StepUpMethod[];
  /** Reasons for the challenge, e.g. `second_factor_enrolled` or a risk signal. */
  reasons: string[];
}

/** A challenge as stored; the state store is trusted, but the shape is checked after a deploy changes it. */
const storedChallengeSchema = z.object({
  userId: z.string(),
  device: deviceInputSchema,
  methods: z.array(z.enum(stepUpMethods)),
  reasons: z.array(z.string()),
  expiresAt: z.number(),
});

export type StoredChallenge = Omit<z.infer<typeof storedChallengeSchema>, 'expiresAt'> & { challengeId: string; expiresAt: Date };

/** How long a login challenge can be completed. */
export const challengeTtlSeconds = 300;

const challengeKey = (id: string) => `login-challenge:${id}`;
const claimKey = (id: string) => `login-challenge-used:${id}`;

/**
 * Login challenges: created when a login needs a second step, kept in the state store for a few
 * minutes, completed at most once. A challenge is bound to the user whose password was verified
 * and to the device input of that login, so completing it cannot start a session for another
 * account or device.
 */
export class LoginChallenges {
  constructor(private readonly deps: { state: StateStore; clock: Clock; audit: AuditLog }) {}

  /** Creates and stores a challenge, which the login returns as `StepUpChallenge`. */
  async create(request: ChallengeRequest, facts: RequestFacts): Promise<StepUpChallenge> {
    const challengeId = randomUUID();
    const expiresAt = new Date(this.deps.clock.now().getTime() + challengeTtlSeconds * 1000);
    const stored = { userId: request.userId, device: request.device, methods: request.methods, reasons: request.reasons, expiresAt: expiresAt.getTime() };

    await this.deps.state.set(challengeKey(challengeId), JSON.stringify(stored), challengeTtlSeconds);
    await this.deps.audit.record({ type: 'login.challenged', userId: request.userId, ip: facts.ip, reason: request.reasons.join(','), data: { challengeId, methods: request.methods } });
    return { challengeId, methods: request.methods, reasons: request.reasons, expiresAt };
  }

  /** Returns the challenge while it is open: not expired on the injected clock, not completed. */
  async find(challengeId: string): Promise<StoredChallenge | undefined> {
    if (!z.uuid().safeParse(challengeId).success) return undefined;
    const [raw, claimed] = await this.deps.state.mget([challengeKey(challengeId), claimKey(challengeId)]);
    if (raw === null || raw === undefined || claimed !== null) return undefined;

    const parsed = storedChallengeSchema.safeParse(JSON.parse(raw));
    if (!parsed.success || parsed.data.expiresAt <= this.deps.clock.now().getTime()) return undefined;
    return { ...parsed.data, challengeId, expiresAt: new Date(parsed.data.expiresAt) };
  }

  /**
   * Marks the challenge completed. Returns false when another request completed it first, so two
   * concurrent completions with valid codes start one session.
   */
  async claim(challengeId: string): Promise<boolean> {
    const claimed = await this.deps.state.setIfAbsent(claimKey(challengeId), '1', challengeTtlSeconds);
    if (claimed) await this.deps.state.del(challengeKey(challengeId));
    return claimed;
  }

  /** Discards an open challenge, after too many wrong codes. */
  async discard(challengeId: string): Promise<void> {
    await this.deps.state.del(challengeKey(challengeId));
  }
}
