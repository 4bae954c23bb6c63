import { describe, expect, it } from 'vitest';

import type { FieldPolicy } from '../../src/authz/compile.ts';
import { combineScopes, effectivePolicyOf, weakerRequirements } from '../../src/authz/effective.ts';
import { defaultTiers, tierSet, type PolicyRequirements } from '../../src/authz/tiers.ts';

const tiers = tierSet(defaultTiers);

function field(declaration: Partial<FieldPolicy>): FieldPolicy {
  return { coordinate: 'T.f', declaredOn: 'field', public: false, authenticated: false, scopes: undefined, tier: undefined, ...declaration };
}

const tierPolicy = (name: string): PolicyRequirements => effectivePolicyOf(field({ tier: name }), tiers);

describe('effectivePolicyOf', () => {
  it('drops the tier name and keeps its requirements', () => {
    const { name: _name, ...high } = tiers.get('HIGH')!;

    expect(effectivePolicyOf(field({ tier: 'HIGH' }), tiers)).toStrictEqual(high);
  });

  it('needs a token for @requiresScopes on a PUBLIC tier', () => {
    expect(effectivePolicyOf(field({ tier: 'PUBLIC', scopes: [['x']] }), tiers)).toEqual({ requiresToken: true, scopes: [['x']] });
  });

  it('needs no token for @public', () => {
    expect(effectivePolicyOf(field({ public: true }), tiers)).toEqual({ requiresToken: false });
  });
});

describe('combineScopes', () => {
  it('distributes AND over the alternatives', () => {
    expect(combineScopes([['a'], ['b']], [['c', 'd']])).toEqual([
      ['a', 'c', 'd'],
      ['b', 'c', 'd'],
    ]);
  });

  it('removes repeated scopes and alternatives', () => {
    expect(combineScopes([['a'], ['a', 'b']], [['a'], ['b']])).toEqual([['a'], ['a', 'b']]);
  });

  it('keeps one side when the other is absent', () => {
    expect(combineScopes(undefined, [['a']])).toEqual([['a']]);
  });
});

describe('weakerRequirements', () => {
  it.each([
    ['LOW', 'MEDIUM', ['minDeviceTrust']],
    ['MEDIUM', 'HIGH', ['maxAuthAgeSeconds', 'acrValues', 'requireVerifiedRevocation']],
    ['HIGH', 'CRITICAL', ['minDeviceTrust', 'maxAuthAgeSeconds', 'maxRiskLevel', 'requireDpop']],
    ['PUBLIC', 'LOW', ['requiresToken']],
    ['CRITICAL', 'LOW', []],
    ['HIGH', 'HIGH', []],
  ])('finds %s weaker than %s in %j', (candidate, reference, expected) => {
    expect(weakerRequirements(tierPolicy(candidate), tierPolicy(reference))).toEqual(expected);
  });

  it.each([
    [undefined, [['a']], ['scopes']],
    [[['a', 'b']], [['a']], []],
    [[['a'], ['b']], [['a']], ['scopes']],
    [[['a']], [['a'], ['b']], []],
  ])('compares scopes %j with %j', (candidate, reference, expected) => {
    const base = { requiresToken: true };

    expect(weakerRequirements({ ...base, scopes: candidate }, { ...base, scopes: reference })).toEqual(expected);
  });

  it('treats a wider acr list as weaker', () => {
    expect(weakerRequirements({ requiresToken: true, acrValues: ['aal1', 'aal2'] }, { requiresToken: true, acrValues: ['aal2'] })).toEqual(['acrValues']);
  });

  it('treats a longer attestation age as weaker', () => {
    expect(weakerRequirements({ requiresToken: true, maxAttestationAgeSeconds: 7200 }, { requiresToken: true, maxAttestationAgeSeconds: 3600 })).toEqual(['maxAttestationAgeSeconds']);
  });
});
