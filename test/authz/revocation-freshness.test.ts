import { describe, expect, it } from 'vitest';

import { principalFromClaims, type Principal } from '../../src/authz/principal.ts';
import { defaultTiers, evaluateRequirements, type TierPolicy } from '../../src/authz/tiers.ts';
import type { RevocationFreshness } from '../../src/sessions/revocation.ts';

const now = 1_800_000_000;

function principal(revocation: RevocationFreshness): Principal {
  return principalFromClaims(
    { iss: 'i', aud: 'a', sub: 'u', sid: 's', did: 'd', jti: 'j', iat: now, exp: now + 300, scope: '', acr: 'aal2', amr: ['pwd', 'otp'], auth_time: now },
    { revocation, dpopVerified: true, deviceTrust: 'TRUSTED', attestedAt: now, riskLevel: 'LOW' },
  );
}

function tier(name: string): TierPolicy {
  return defaultTiers.find((candidate) => candidate.name === name) as TierPolicy;
}

describe('revocation freshness in tiers', () => {
  it.each([
    { tier: 'LOW', freshness: 'verified', code: undefined },
    { tier: 'LOW', freshness: 'cached', code: undefined },
    { tier: 'LOW', freshness: 'stale', code: 'SERVICE_UNAVAILABLE' },
    { tier: 'MEDIUM', freshness: 'cached', code: undefined },
    { tier: 'MEDIUM', freshness: 'stale', code: 'SERVICE_UNAVAILABLE' },
    { tier: 'HIGH', freshness: 'verified', code: undefined },
    { tier: 'HIGH', freshness: 'cached', code: 'SERVICE_UNAVAILABLE' },
    { tier: 'HIGH', freshness: 'stale', code: 'SERVICE_UNAVAILABLE' },
    { tier: 'CRITICAL', freshness: 'verified', code: undefined },
    { tier: 'CRITICAL', freshness: 'cached', code: 'SERVICE_UNAVAILABLE' },
  ] as const)('$tier with a $freshness view: $code', ({ tier: name, freshness, code }) => {
    expect(evaluateRequirements(tier(name), principal(freshness), now)?.code).toBe(code);
  });

  it('tells the client when to retry', () => {
    const error = evaluateRequirements(tier('CRITICAL'), principal('cached'), now);

    expect(error?.extensions.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('fails a stale view closed for a plain token requirement', () => {
    expect(evaluateRequirements({ requiresToken: true }, principal('stale'), now)?.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('treats a principal without freshness as verified', () => {
    const { revocation: _revocation, ...withoutFreshness } = principal('verified');

    expect(evaluateRequirements(tier('CRITICAL'), withoutFreshness, now)).toBeUndefined();
  });
});
