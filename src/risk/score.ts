import type { RiskLevel } from '../authz/principal.ts';
import type { DecisionPoint, RiskAction, RiskPolicy, SignalName } from './config.ts';
import type { Signal } from './signals.ts';

export interface RiskDecision {
  point: DecisionPoint;
  score: number;
  level: RiskLevel;
  action: RiskAction;
  /** Names of the fired signals, highest weight first: the reasons sent to the client. */
  reasons: SignalName[];
}

/**
 * Turns fired signals into a decision: the sum of their weights (each signal counted once) sets
 * the level through the policy's thresholds, and the level sets the action at this decision point.
 * Pure: same signals and policy, same decision.
 */
export function scoreSignals(point: DecisionPoint, signals: readonly Signal[], policy: RiskPolicy): RiskDecision {
  const names = [...new Set(signals.map((signal) => signal.name))];
  const weighted = names.map((name) => ({ name, weight: policy.weights[name] })).filter((entry) => entry.weight > 0);
  weighted.sort((a, b) => b.weight - a.weight || a.name.localeCompare(b.name));

  const score = weighted.reduce((sum, entry) => sum + entry.weight, 0);
  const level = levelOf(score, policy);
  return { point, score, level, action: policy.actions[point][level], reasons: weighted.map((entry) => entry.name) };
}

export function levelOf(score: number, policy: RiskPolicy): RiskLevel {
  if (score >= policy.levels.HIGH) return 'HIGH';
  if (score >= policy.levels.MEDIUM) return 'MEDIUM';
  return 'LOW';
}
