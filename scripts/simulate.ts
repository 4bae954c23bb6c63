import { parseArgs } from 'node:util';

import { z } from 'zod';

import { fleetConfig, type FleetConfig, type FleetConfigInput } from '../sim/config.ts';
import { runFleet, type FleetReport } from '../sim/fleet.ts';
import { startInProcessGateway } from '../sim/gateway.ts';
import { RealTime } from '../sim/time.ts';
import { VirtualTime } from '../sim/virtual-time.ts';

const usage = `Usage: npm run simulate -- [options]

Runs a fleet of virtual devices with the Tollgate client library and injects network and app faults.

Target:
  (default)                  the gateway at TOLLGATE_URL (default http://127.0.0.1:4000), in real time
  --in-process               start a gateway in this process on virtual time, in a new schema of
                             DATABASE_URL and key prefix of REDIS_URL (both required); the schema is
                             dropped at the end
  --ttl SECONDS              access-token lifetime of the in-process gateway (default 30, minimum 30)

Fleet:
  --devices N                virtual devices (default 1000)
  --duration SECONDS         seconds of traffic with faults: virtual in-process (default 300), real
                             against TOLLGATE_URL (default 120); one token lifetime and 15 s
                             without faults follow
  --request-interval SECONDS mean seconds between an app's requests (default 20)
  --seed N                   seed of every random draw (default 1)
  --bearer                   sign up without device keys: bearer sessions, no DPoP
  --json                     print the report as JSON

Fault rates (probabilities unless stated):
  --drop-after-commit P      per refresh, response lost after the rotation committed (default 0.05)
  --timeout P                per request, no response before the client's timeout (default 0.02)
  --duplicate P              per request, delivered twice (default 0.02)
  --skewed-clocks P          share of devices with a clock up to 12 hours off (default 0.5)
  --kill P                   per refresh, app killed and relaunched from storage (default 0.03)
  --outages-per-hour R       network outages of 1 to 5 minutes per device per hour (default 2)
  --stolen P                 share of devices whose tokens are copied to an attacker (default 0.01)`;

const options = {
  'in-process': { type: 'boolean' },
  ttl: { type: 'string' },
  devices: { type: 'string' },
  duration: { type: 'string' },
  'request-interval': { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
  bearer: { type: 'boolean' },
  'drop-after-commit': { type: 'string' },
  timeout: { type: 'string' },
  duplicate: { type: 'string' },
  'skewed-clocks': { type: 'string' },
  kill: { type: 'string' },
  'outages-per-hour': { type: 'string' },
  stolen: { type: 'string' },
  help: { type: 'boolean' },
} as const;

function numberOption(values: Record<string, unknown>, name: string): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new Error(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return parsed;
}

function configFrom(values: Record<string, unknown>, inProcess: boolean): FleetConfigInput {
  const faults = {
    dropAfterCommit: numberOption(values, 'drop-after-commit'),
    timeout: numberOption(values, 'timeout'),
    duplicate: numberOption(values, 'duplicate'),
    skewedClocks: numberOption(values, 'skewed-clocks'),
    killDuringRefresh: numberOption(values, 'kill'),
    outagesPerDeviceHour: numberOption(values, 'outages-per-hour'),
    stolenDevices: numberOption(values, 'stolen'),
  };
  return {
    devices: numberOption(values, 'devices'),
    durationSeconds: numberOption(values, 'duration') ?? (inProcess ? 300 : 120),
    requestIntervalSeconds: numberOption(values, 'request-interval'),
    seed: numberOption(values, 'seed'),
    bearerSessions: values.bearer === true,
    faults: Object.fromEntries(Object.entries(faults).filter(([, value]) => value !== undefined)),
  };
}

/** Reads the fleet configuration; an invalid option ends the process with its name and exit code 2. */
function parseConfig(values: Record<string, unknown>): FleetConfig {
  try {
    return fleetConfig(configFrom(values, values['in-process'] === true));
  } catch (error) {
    const message = error instanceof z.ZodError ? error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') : (error as Error).message;
    console.error(`simulate: invalid option: ${message}`);
    process.exit(2);
  }
}

async function simulate(values: Record<string, unknown>, config: FleetConfig): Promise<FleetReport> {
  const inProcess = values['in-process'] === true;

  if (!inProcess) {
    const base = (process.env.TOLLGATE_URL ?? 'http://127.0.0.1:4000').replace(/\/+$/, '');
    return runFleet(config, { url: `${base}/graphql`, fetch: (input, init) => fetch(input, init) }, new RealTime());
  }

  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) throw new Error('--in-process needs DATABASE_URL and REDIS_URL: the fleet runs against real PostgreSQL and Redis.');
  const ttlSeconds = numberOption(values, 'ttl') ?? 30;
  const time = new VirtualTime(Date.now());
  const gateway = await startInProcessGateway({ clock: time.gatewayClock, databaseUrl, redisUrl, accessTokenTtlSeconds: ttlSeconds });
  try {
    return await runFleet(config, { url: gateway.url, fetch: (input, init) => fetch(input, init), accessTokenTtlSeconds: ttlSeconds, reuseDetections: gateway.reuseDetections }, time);
  } finally {
    await gateway.close();
  }
}

function format(report: FleetReport): string {
  const counts = (record: Record<string, number>) => Object.entries(record).map(([key, value]) => `${key} ${value}`).join(', ') || 'none';
  const rows: Array<[string, string]> = [
    ['devices', `${report.devices} (${report.signUpFailures} failed to sign up)`],
    ['time', `${report.fleetSeconds.toFixed(0)} s on the fleet's clock, ${report.wallSeconds.toFixed(1)} s wall`],
    ['spurious sign-outs', `${report.spuriousSignOuts} (${counts(report.spuriousSignOutReasons)})`],
    ['thefts detected', `${report.theftsDetected} of ${report.theftsInjected} (${counts(report.theftDetections)})`],
    ['attacker requests served', String(report.attackerRequestsServed)],
    ['gateway reuse detections', report.gatewayReuseDetections === undefined ? 'not available' : String(report.gatewayReuseDetections)],
    ['refreshes', `${report.refreshes}: ${report.refreshesPerFleetSecond.toFixed(1)}/s on the fleet's clock, ${report.refreshesPerWallSecond.toFixed(1)}/s wall`],
    ['refresh latency', `p50 ${report.refreshLatencyMs.p50.toFixed(1)} ms, p99 ${report.refreshLatencyMs.p99.toFixed(1)} ms (wall clock)`],
    ['peak refreshes/s', `${report.peakRefreshesPerSecondFleetExpiry} when the fleet's first tokens expire, ${report.peakRefreshesPerSecond} overall`],
    ['retries', `${report.retries} (${counts(report.retriesByCause)})`],
    ['app requests', `${report.requestsServed} served, ${report.requestsFailed} failed`],
    ['faults injected', counts(report.faultsInjected)],
    ['unhealthy at end', String(report.unhealthyAtEnd)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

async function main(): Promise<void> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ options, strict: true }));
  } catch (error) {
    console.error(`simulate: ${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    return;
  }

  let report: FleetReport;
  try {
    report = await simulate(values, parseConfig(values));
  } catch (error) {
    console.error(`simulate: ${(error as Error).message}`);
    process.exit(1);
  }
  console.log(values.json ? JSON.stringify(report, null, 2) : format(report));
  const passed = report.spuriousSignOuts === 0 && report.theftsDetected === report.theftsInjected && report.unhealthyAtEnd === 0;
  process.exit(passed ? 0 : 1);
}

await main();
