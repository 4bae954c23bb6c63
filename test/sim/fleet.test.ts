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
  report = await runFleet(config, { url: graphqlUrl, fetch: injectFetch(gateway), accessTokenTtlSeconds: ttlSeconds }, time);
  console.log(JSON.stringify(report, null, 2));
}, 300_000);

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

  it('leaves every device working', () => {
    expect(report.unhealthyAtEnd).toBe(0);
  });
});
