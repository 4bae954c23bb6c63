import { describe, expect, it } from 'vitest';

import { defaultRiskPolicy, loadRiskPolicy, type RiskPolicy } from '../../src/risk/config.ts';
import { levelOf, scoreSignals } from '../../src/risk/score.ts';
import type { Signal } from '../../src/risk/signals.ts';

const signal = (name: Signal['name']): Signal => ({ name, detail: {} });

describe('scoreSignals', () => {
  it('allows a sign-in without signals', () => {
    const decision = scoreSignals('login', [], defaultRiskPolicy);

    expect(decision.level).toBe('LOW');
    expect(decision.action).toBe('allow');
    expect(decision.reasons).toEqual([]);
  });

  it('steps up a sign-in from a new device', () => {
    const decision = scoreSignals('login', [signal('new_device')], defaultRiskPolicy);

    expect(decision.score).toBe(30);
    expect(decision.level).toBe('MEDIUM');
    expect(decision.action).toBe('step_up');
  });

  it('denies impossible travel with a new device', () => {
    const decision = scoreSignals('login', [signal('new_device'), signal('impossible_travel')], defaultRiskPolicy);

    expect(decision.level).toBe('HIGH');
    expect(decision.action).toBe('deny');
    expect(decision.reasons).toEqual(['impossible_travel', 'new_device']);
  });

  it('suspends the device on a refresh burst', () => {
    expect(scoreSignals('refresh', [signal('refresh_burst')], defaultRiskPolicy).action).toBe('suspend');
  });

  it('counts a repeated signal once', () => {
    expect(scoreSignals('login', [signal('device_untrusted'), signal('device_untrusted')], defaultRiskPolicy).score).toBe(10);
  });

  it('ignores signals weighted zero', () => {
    const policy: RiskPolicy = { ...defaultRiskPolicy, weights: { ...defaultRiskPolicy.weights, new_device: 0 } };
    const decision = scoreSignals('login', [signal('new_device')], policy);

    expect(decision.level).toBe('LOW');
    expect(decision.reasons).toEqual([]);
  });

  it('places level thresholds inclusively', () => {
    expect(levelOf(29, defaultRiskPolicy)).toBe('LOW');
    expect(levelOf(30, defaultRiskPolicy)).toBe('MEDIUM');
    expect(levelOf(69, defaultRiskPolicy)).toBe('MEDIUM');
    expect(levelOf(70, defaultRiskPolicy)).toBe('HIGH');
  });
});

describe('loadRiskPolicy', () => {
  it('rejects an unknown signal name', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const file = `${mkdtempSync(`${tmpdir()}/risk-`)}/policy.json`;
    writeFileSync(file, JSON.stringify({ weights: { new_devise: 10 } }));

    expect(() => loadRiskPolicy(file)).toThrow(/weights/);
  });

  it('merges a partial policy over the defaults', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const file = `${mkdtempSync(`${tmpdir()}/risk-`)}/policy.json`;
    writeFileSync(file, JSON.stringify({ weights: { new_device: 5 }, actions: { login: { LOW: 'allow', MEDIUM: 'allow', HIGH: 'step_up' } } }));
    const policy = loadRiskPolicy(file);

    expect(policy.weights.new_device).toBe(5);
    expect(policy.weights.impossible_travel).toBe(defaultRiskPolicy.weights.impossible_travel);
    expect(policy.actions.login.HIGH).toBe('step_up');
    expect(policy.actions.refresh).toEqual(defaultRiskPolicy.actions.refresh);
  });

  it('rejects levels in the wrong order', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const file = `${mkdtempSync(`${tmpdir()}/risk-`)}/policy.json`;
    writeFileSync(file, JSON.stringify({ levels: { MEDIUM: 50, HIGH: 40 } }));

    expect(() => loadRiskPolicy(file)).toThrow(/levels.HIGH/);
  });
});
