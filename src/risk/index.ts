import type { AuditLog } from '../audit/index.ts';
import { riskLevels, type RiskLevel } from '../authz/principal.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';
import { RiskEngine } from './engine.ts';
import { openGeoLocator } from './geo.ts';
import { RateLimits } from './limits.ts';

export { RiskEngine, type LoginChallenge, type LoginChallenger, type LoginGate, type LoginVerdict, type RiskFacts } from './engine.ts';
export { RateLimits } from './limits.ts';
export { sessionRiskKey } from './signals.ts';
export { scoreSignals, type RiskDecision } from './score.ts';
export { TableLocator, EdgeHeaderLocator, MaxMindLocator, edgeLocationFrom, type GeoLocator, type GeoObservation } from './geo.ts';
export { clientSubject, ipv6Prefix64, normalizeIp, TrustedProxies } from './ip.ts';
export { defaultRiskPolicy, type RiskConfig, type HardeningConfig } from './config.ts';

/** Builds the risk engine with its rate limits and geolocation source. */
export async function createRiskEngine(deps: { config: Config; db: Db; state: StateStore; clock: Clock; logger: Logger; audit: AuditLog; syncDeviceTrust?: (deviceId: string) => Promise<unknown> }): Promise<RiskEngine> {
  const { config } = deps;
  const limits = new RateLimits(config.risk.limits, deps.state, config.redisPrefix, deps.logger);
  const geo = await openGeoLocator(config.risk.geo, deps.logger);
  return new RiskEngine({
    db: deps.db,
    state: deps.state,
    clock: deps.clock,
    logger: deps.logger,
    audit: deps.audit,
    config: config.risk,
    limits,
    geo,
    sessionLifetimeSeconds: config.sessionAbsoluteSeconds,
    syncDeviceTrust: deps.syncDeviceTrust,
  });
}

/** Reads a mirrored session risk level; a missing or unknown value is LOW. */
export function riskLevelFrom(value: string | null | undefined): RiskLevel {
  return (riskLevels as readonly string[]).includes(value ?? '') ? (value as RiskLevel) : 'LOW';
}
