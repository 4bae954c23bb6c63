import { describe, expect, it } from 'vitest';

import type { FieldPolicy } from '../../src/authz/compile.ts';
import { trustLevels, type DeviceTrust, type Principal } from '../../src/authz/principal.ts';
import { evaluatePolicy } from '../../src/authz/rules.ts';
import { defaultTiers, tierSet, type TierSet } from '../../src/authz/tiers.ts';
import { contextFor, nowSeconds, principal } from './principals.ts';

const tiers = tierSet(defaultTiers);

function field(declaration: Partial<FieldPolicy>): FieldPolicy {
  return { coordinate: 'Query.probe', declaredOn: 'field', public: false, authenticated: false, scopes: undefined, tier: undefined, ...declaration };
}

/** Returns the code and extensions a field policy gives a principal, or `allowed` when it passes. */
function decide(policy: FieldPolicy, caller: Principal | null, set: TierSet = tiers): unknown {
  const error = evaluatePolicy(policy, set, contextFor(caller));
  return error ? error.extensions : 'allowed';
}

const tier = (name: string) => field({ tier: name });

/** A principal that satisfies CRITICAL, for cells that change one input at a time. */
const strong = (overrides: Partial<Principal> = {}) =>
  principal({ acr: 'aal2', amr: ['pwd', 'otp'], authTime: nowSeconds - 10, deviceTrust: 'ATTESTED', dpopVerified: true, tokenType: 'DPoP', jkt: 'thumbprint', ...overrides });

describe('evaluatePolicy per tier', () => {
  it.each(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])('rejects an anonymous request for %s', (name) => {
    expect(decide(tier(name), null)).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('allows an anonymous request for PUBLIC', () => {
    expect(decide(tier('PUBLIC'), null)).toBe('allowed');
  });

  it('allows any valid token for LOW', () => {
    expect(decide(tier('LOW'), principal())).toBe('allowed');
  });

  const trustCells: Array<[string, DeviceTrust, unknown]> = [
    ['MEDIUM', 'UNKNOWN', { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'BASIC', currentTrust: 'UNKNOWN' }],
    ['MEDIUM', 'BASIC', 'allowed'],
    ['MEDIUM', 'ATTESTED', 'allowed'],
    ['MEDIUM', 'TRUSTED', 'allowed'],
    ['HIGH', 'UNKNOWN', { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'BASIC', currentTrust: 'UNKNOWN' }],
    ['HIGH', 'BASIC', 'allowed'],
    ['HIGH', 'ATTESTED', 'allowed'],
    ['HIGH', 'TRUSTED', 'allowed'],
    ['CRITICAL', 'UNKNOWN', { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'ATTESTED', currentTrust: 'UNKNOWN' }],
    ['CRITICAL', 'BASIC', { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'ATTESTED', currentTrust: 'BASIC' }],
    ['CRITICAL', 'ATTESTED', 'allowed'],
    ['CRITICAL', 'TRUSTED', 'allowed'],
  ];
  it.each(trustCells)('answers %s with device trust %s', (name, deviceTrust, expected) => {
    expect(decide(tier(name), strong({ deviceTrust }))).toEqual(expected);
  });

  it('covers every trust level in the trust cells', () => {
    expect(new Set(trustCells.map(([, trust]) => trust))).toEqual(new Set(trustLevels));
  });

  const freshnessCells: Array<[string, string, number, unknown]> = [
    ['HIGH', 'aal2', 900, 'allowed'],
    ['HIGH', 'aal2', 901, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_old' }],
    ['HIGH', 'aal1', 0, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_weak' }],
    ['HIGH', 'aal1', 901, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 900, reason: 'authentication_too_weak' }],
    ['CRITICAL', 'aal2', 300, 'allowed'],
    ['CRITICAL', 'aal2', 301, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 300, reason: 'authentication_too_old' }],
    ['CRITICAL', 'aal1', 0, { code: 'STEP_UP_REQUIRED', acrValues: ['aal2'], maxAge: 300, reason: 'authentication_too_weak' }],
    ['LOW', 'aal1', 86_400, 'allowed'],
    ['MEDIUM', 'aal1', 86_400, 'allowed'],
  ];
  it.each(freshnessCells)('answers %s with acr %s authenticated %i s ago', (name, acr, age, expected) => {
    expect(decide(tier(name), strong({ acr, authTime: nowSeconds - age }))).toEqual(expected);
  });

  it('requires a DPoP proof for CRITICAL', () => {
    expect(decide(tier('CRITICAL'), strong({ dpopVerified: false }))).toEqual({ code: 'DPOP_PROOF_INVALID', reason: 'proof_required' });
  });

  it.each([
    ['LOW', 'allowed'],
    ['MEDIUM', { code: 'RISK_DENIED', reasons: ['session risk MEDIUM exceeds LOW'] }],
    ['HIGH', { code: 'RISK_DENIED', reasons: ['session risk HIGH exceeds LOW'] }],
  ] as const)('answers CRITICAL with session risk %s', (riskLevel, expected) => {
    expect(decide(tier('CRITICAL'), strong({ riskLevel }))).toEqual(expected);
  });

  it('reports weak device trust before a stale authentication', () => {
    expect(decide(tier('HIGH'), principal({ acr: 'aal1', authTime: nowSeconds - 5000 }))).toMatchObject({ code: 'DEVICE_TRUST_REQUIRED' });
  });
});

describe('evaluatePolicy with directives', () => {
  it.each([
    [[['payments:read', 'payments:write']], ['payments:read', 'payments:write'], 'allowed'],
    [[['payments:read', 'payments:write']], ['payments:read'], { code: 'INSUFFICIENT_SCOPE', requiredScopes: [['payments:read', 'payments:write']] }],
    [[['payments:read'], ['payments:write']], ['payments:write'], 'allowed'],
    [[['payments:read'], ['payments:write']], ['payments:read'], 'allowed'],
    [[['payments:read'], ['payments:write']], ['profile'], { code: 'INSUFFICIENT_SCOPE', requiredScopes: [['payments:read'], ['payments:write']] }],
  ])('checks scopes %j against %j', (required, held, expected) => {
    expect(decide(field({ scopes: required }), principal({ scopes: new Set(held) }))).toEqual(expected);
  });

  it('ANDs a tier with @requiresScopes', () => {
    const policy = field({ tier: 'HIGH', scopes: [['account']] });

    expect(decide(policy, strong({ scopes: new Set(['account']) }))).toBe('allowed');
    expect(decide(policy, strong({ scopes: new Set(['profile']) }))).toEqual({ code: 'INSUFFICIENT_SCOPE', requiredScopes: [['account']] });
    expect(decide(policy, strong({ scopes: new Set(['account']), acr: 'aal1' }))).toMatchObject({ code: 'STEP_UP_REQUIRED' });
  });

  it('ANDs @authenticated with @requiresScopes', () => {
    const policy = field({ authenticated: true, scopes: [['profile']] });

    expect(decide(policy, null)).toEqual({ code: 'UNAUTHENTICATED' });
    expect(decide(policy, principal({ scopes: new Set() }))).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
  });

  it('combines tier scopes with field scopes into every alternative', () => {
    const set = tierSet([...defaultTiers, { name: 'PAYOUTS', requiresToken: true, scopes: [['payouts']] }]);
    const policy = field({ tier: 'PAYOUTS', scopes: [['payments:read'], ['payments:write']] });

    expect(decide(policy, principal({ scopes: new Set(['payouts', 'payments:write']) }), set)).toBe('allowed');
    expect(decide(policy, principal({ scopes: new Set(['payments:write']) }), set)).toEqual({
      code: 'INSUFFICIENT_SCOPE',
      requiredScopes: [
        ['payments:read', 'payouts'],
        ['payments:write', 'payouts'],
      ],
    });
  });
});

describe('evaluatePolicy with attestation age', () => {
  const set = tierSet([...defaultTiers, { name: 'PAYOUTS', requiresToken: true, minDeviceTrust: 'ATTESTED', maxAttestationAgeSeconds: 3600 }]);

  it.each([
    [3600, 'allowed'],
    [3601, { code: 'DEVICE_TRUST_REQUIRED', requiredTrust: 'ATTESTED', currentTrust: 'ATTESTED', reason: 'attestation_too_old', maxAttestationAge: 3600 }],
  ])('answers an attestation %i s old', (age, expected) => {
    expect(decide(tier('PAYOUTS'), strong({ attestedAt: nowSeconds - age }), set)).toEqual(expected);
  });

  it('rejects a device without an attestation time', () => {
    expect(decide(tier('PAYOUTS'), strong(), set)).toMatchObject({ code: 'DEVICE_TRUST_REQUIRED', reason: 'attestation_too_old' });
  });
});
