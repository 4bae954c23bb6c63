import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadTierPolicies, parseTierPolicies, PolicyFileError } from '../../src/authz/policy-file.ts';
import { defaultTiers, type TierPolicy } from '../../src/authz/tiers.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const directory = mkdtempSync(path.join(tmpdir(), 'tollgate-policy-'));

function writePolicy(name: string, text: string): string {
  const file = path.join(directory, name);
  writeFileSync(file, text);
  return file;
}

function defaultTier(name: string): TierPolicy {
  const tier = defaultTiers.find((candidate) => candidate.name === name);
  if (!tier) throw new Error(`no built-in tier ${name}`);
  return tier;
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof PolicyFileError || error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the policy file to be rejected');
}

describe('tier policy file', () => {
  it('returns the built-in tiers without a file', () => {
    const tiers = loadTierPolicies(undefined);

    expect([...tiers.values()]).toEqual(defaultTiers);
  });

  it('merges a YAML entry over a built-in tier', () => {
    const tiers = loadTierPolicies(writePolicy('merge.yaml', 'tiers:\n  HIGH:\n    maxAuthAgeSeconds: 600\n'));

    expect(tiers.get('HIGH')).toEqual({ ...defaultTier('HIGH'), maxAuthAgeSeconds: 600 });
  });

  it('removes a built-in requirement with null', () => {
    const tiers = loadTierPolicies(writePolicy('null.json', JSON.stringify({ tiers: { CRITICAL: { minDeviceTrust: null, requireDpop: false } } })));

    const { minDeviceTrust: _removed, ...critical } = defaultTier('CRITICAL');

    expect(tiers.get('CRITICAL')).toEqual({ ...critical, requireDpop: false });
  });

  it('adds a custom tier that extends another', () => {
    const text = ['tiers:', '  PAYOUTS:', '    extends: CRITICAL', '    scopes: [[payments:write, payouts]]', '    maxAttestationAgeSeconds: 86400'].join('\n');
    const tiers = parseTierPolicies(text, 'custom.yml');

    expect(tiers.get('PAYOUTS')).toEqual({ ...defaultTier('CRITICAL'), name: 'PAYOUTS', scopes: [['payments:write', 'payouts']], maxAttestationAgeSeconds: 86400 });
    expect(tiers.get('LOW')).toEqual({ name: 'LOW', requiresToken: true });
  });

  it('starts a custom tier from any valid token', () => {
    const tiers = parseTierPolicies(JSON.stringify({ tiers: { SUPPORT_TOOLS: { scopes: [['support']] } } }), 'support.json');

    expect(tiers.get('SUPPORT_TOOLS')).toEqual({ name: 'SUPPORT_TOOLS', requiresToken: true, scopes: [['support']] });
  });

  it('extends a custom tier defined later in the file', () => {
    const text = JSON.stringify({ tiers: { CHILD: { extends: 'PARENT' }, PARENT: { maxAuthAgeSeconds: 60 } } });

    expect(parseTierPolicies(text, 'order.json').get('CHILD')?.maxAuthAgeSeconds).toBe(60);
  });

  it.each([
    ['a wrong type', 'tiers:\n  HIGH:\n    maxAuthAgeSeconds: soon\n', 'tier "HIGH", field "maxAuthAgeSeconds"'],
    ['a misspelt requirement', 'tiers:\n  HIGH:\n    maxAuthAge: 60\n', 'tier "HIGH", field "maxAuthAge"'],
    ['an unknown trust level', 'tiers:\n  MEDIUM:\n    minDeviceTrust: SOMEWHAT\n', 'tier "MEDIUM", field "minDeviceTrust"'],
    ['an empty scope alternative', 'tiers:\n  LOW:\n    scopes: [[]]\n', 'tier "LOW", field "scopes[0]"'],
    ['a negative age', 'tiers:\n  HIGH:\n    maxAuthAgeSeconds: -5\n', 'tier "HIGH", field "maxAuthAgeSeconds"'],
    ['a fractional age', 'tiers:\n  HIGH:\n    maxAttestationAgeSeconds: 1.5\n', 'tier "HIGH", field "maxAttestationAgeSeconds"'],
    ['an unknown risk level', 'tiers:\n  CRITICAL:\n    maxRiskLevel: NONE\n', 'tier "CRITICAL", field "maxRiskLevel"'],
    ['an unknown top-level key', 'tiers: {}\nversion: 2\n', 'field "version"'],
    ['an empty file', '', 'field "tiers"'],
    ['an unknown parent', 'tiers:\n  PAYOUTS:\n    extends: CRITICALL\n', 'tier "PAYOUTS", field "extends": no tier named "CRITICALL"'],
    ['a lower-case tier name', 'tiers:\n  payouts: {}\n', 'tier "payouts"'],
    ['attestation age without attestation', 'tiers:\n  MEDIUM:\n    maxAttestationAgeSeconds: 60\n', 'tier "MEDIUM", field "maxAttestationAgeSeconds"'],
    ['requirements on a tier without token', 'tiers:\n  PUBLIC:\n    scopes: [[profile]]\n', 'tier "PUBLIC", field "requiresToken"'],
  ])('names the file, tier and field for %s', (_case, text, location) => {
    const problems = problemsOf(() => parseTierPolicies(text, '/etc/tollgate/tiers.yaml'));

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('TOLLGATE_POLICY_FILE /etc/tollgate/tiers.yaml: ');
    expect(problems[0]).toContain(location);
  });

  it('lists every problem of a file at once', () => {
    const text = 'tiers:\n  HIGH:\n    maxAuthAgeSeconds: soon\n  LOW:\n    acrValues: []\n';

    expect(problemsOf(() => parseTierPolicies(text, 'two.yaml'))).toHaveLength(2);
  });

  it('reports a cycle of extends once per tier', () => {
    const problems = problemsOf(() => parseTierPolicies(JSON.stringify({ tiers: { A: { extends: 'B' }, B: { extends: 'A' } } }), 'cycle.json'));

    expect(problems).toEqual(['TOLLGATE_POLICY_FILE cycle.json: tier "A", field "extends": tiers extend each other in a cycle (A -> B -> A)']);
  });

  it('reports invalid YAML with its position', () => {
    const problems = problemsOf(() => parseTierPolicies('tiers:\n  HIGH: [unclosed\n', 'broken.yaml'));

    expect(problems[0]).toMatch(/^TOLLGATE_POLICY_FILE broken\.yaml: invalid YAML: .*line \d+/);
  });

  it('rejects duplicate YAML keys', () => {
    const problems = problemsOf(() => parseTierPolicies('tiers:\n  HIGH: {}\n  HIGH: {}\n', 'dupes.yaml'));

    expect(problems[0]).toContain('invalid YAML');
  });

  it('reports invalid JSON', () => {
    expect(problemsOf(() => parseTierPolicies('{"tiers": ', 'broken.json'))[0]).toContain('TOLLGATE_POLICY_FILE broken.json: invalid JSON');
  });

  it('rejects an unknown file extension', () => {
    expect(problemsOf(() => parseTierPolicies('{}', 'tiers.toml'))[0]).toContain('unknown file type ".toml"');
  });

  it('reports a missing file', () => {
    const file = path.join(directory, 'missing.yaml');

    expect(problemsOf(() => loadTierPolicies(file))[0]).toBe(`TOLLGATE_POLICY_FILE ${file}: cannot read the file (ENOENT); point TOLLGATE_POLICY_FILE at a readable JSON or YAML file`);
  });

  it('stops loadConfig with a ConfigError naming the file', () => {
    const file = writePolicy('config.yaml', 'tiers:\n  HIGH:\n    requireDpop: sometimes\n');
    const problems = problemsOf(() => loadConfig({ TOLLGATE_POLICY_FILE: file }));

    expect(problems[0]).toContain(`TOLLGATE_POLICY_FILE ${file}: tier "HIGH", field "requireDpop"`);
  });

  it('gives loadConfig the file tiers', () => {
    const file = writePolicy('config-ok.yaml', 'tiers:\n  AUDITORS:\n    scopes: [[audit]]\n');

    expect(loadConfig({ TOLLGATE_POLICY_FILE: file }).tiers.get('AUDITORS')?.scopes).toEqual([['audit']]);
  });
});
