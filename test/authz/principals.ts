import type { Principal } from '../../src/authz/principal.ts';
import { ManualClock } from '../../src/clock.ts';
import type { RequestContext } from '../../src/context.ts';

/** A fixed instant for policy tests, in epoch seconds. */
export const nowSeconds = 1_800_000_000;

/** Builds a principal as authentication would, with every policy input overridable. */
export function principal(overrides: Partial<Principal> = {}): Principal {
  return {
    userId: '00000000-0000-4000-8000-000000000001',
    sessionId: '00000000-0000-4000-8000-000000000002',
    deviceId: '00000000-0000-4000-8000-000000000003',
    scopes: new Set(['profile', 'payments:read']),
    acr: 'aal1',
    amr: ['pwd'],
    authTime: nowSeconds - 60,
    issuedAt: nowSeconds - 10,
    expiresAt: nowSeconds + 290,
    tokenId: 'token-1',
    tokenType: 'Bearer',
    jkt: undefined,
    dpopVerified: false,
    deviceTrust: 'UNKNOWN',
    riskLevel: 'LOW',
    ...overrides,
  };
}

/** Builds the parts of a request context that rules read. */
export function contextFor(caller: Principal | null): RequestContext {
  return {
    requestId: 'request-1',
    clock: new ManualClock(nowSeconds * 1000),
    auth: { principal: caller },
    ruleResults: new Map(),
    loaded: new Map(),
  } as unknown as RequestContext;
}
