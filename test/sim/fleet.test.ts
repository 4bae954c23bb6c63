import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fleetConfig } from '../../sim/config.ts';
import { runFleet, type FleetReport } from '../../sim/fleet.ts';
import { simulatorGatewayEnv } from '../../sim/gateway.ts';
import { VirtualTime } from '../../sim/virtual-time.ts';
import { injectFetch, graphqlUrl } from '../client/support.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

const ttlSeconds = 30;

let gateway: TestGateway;
let report: FleetReport;

beforeAll(async () => {
  const time = new VirtualTime(Date.now());
  gateway = await startTestGateway({ clock: time.gatewayClock, env: { ...simulatorGatewayEnv(ttlSeconds), LOG_LEVEL: 'error' } });
  const config = fleetConfig({ devices: 200, durationSeconds: 60, requestIntervalSeconds: 30, quantumMs: 250, seed: 7 });
  const reuseDetections = () => gateway.tollgate.services.database.prisma.auditEvent.count({ where: { type: 'refresh.reuse_detected' } });
  report = await runFleet(config, { url: graphqlUrl, fetch: injectFetch(gateway), accessTokenTtlSeconds: ttlSeconds, reuseDetections }, time);
}, 180_000);

afterAll(async () => {
  await gateway?.close();
});

describe('fleet of 200 devices', () => {
  it('signs every device up', () => {
    expect(report.signUpFailures).toBe(0);
  });

  it('has no spurious sign-outs', () => {
    expect(report.spuriousSignOutReasons).toEqual({});
  });

  it('detects every theft', () => {
    expect(report.theftsDetected).toBe(report.theftsInjected);
  });

  it('injects thefts', () => {
    expect(report.theftsInjected).toBeGreaterThan(0);
  });

  it('revokes for reuse only stolen sessions', () => {
    const detectedByReuse = Object.entries(report.theftDetections).filter(([by]) => by.endsWith(':refresh_token_reused'));

    expect(report.gatewayReuseDetections).toBe(detectedByReuse.reduce((sum, [, count]) => sum + count, 0));
  });

  it('spreads the first refreshes of the fleet', () => {
    expect(report.peakRefreshesPerSecondFleetExpiry).toBeGreaterThan(0);
    expect(report.peakRefreshesPerSecondFleetExpiry).toBeLessThan(report.devices / 2);
  });

  it('leaves every device working', () => {
    expect(report.unhealthyAtEnd).toBe(0);
  });
});
