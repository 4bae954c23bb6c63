import type { FetchLike } from '../src/client/index.ts';
import { Attacker } from './attacker.ts';
import type { FleetConfig } from './config.ts';
import { SimDevice, type FleetContext } from './device.ts';
import { FleetMetrics, percentile, theftSignOutReasons, type TheftRecord } from './metrics.ts';
import { Random } from './random.ts';
import type { SimulationTime } from './time.ts';

/** The gateway a fleet runs against. */
export interface FleetTarget {
  /** GraphQL endpoint, as the gateway's public URL names it (DPoP htu). */
  url: string;
  fetch: FetchLike;
  /** Access-token lifetime; read from the first sign-up when undefined. */
  accessTokenTtlSeconds?: number | undefined;
  /** Sessions the gateway revoked for refresh-token reuse, when the simulator can read its database. */
  reuseDetections?: () => Promise<number>;
}

export interface FleetReport {
  devices: number;
  signUpFailures: number;
  /** Seconds on the fleet's clock: virtual with an in-process gateway, real against a running one. */
  fleetSeconds: number;
  wallSeconds: number;
  spuriousSignOuts: number;
  spuriousSignOutReasons: Record<string, number>;
  theftsInjected: number;
  theftsDetected: number;
  theftDetections: Record<string, number>;
  attackerRequestsServed: number;
  gatewayReuseDetections: number | undefined;
  refreshes: number;
  refreshesPerFleetSecond: number;
  refreshesPerWallSecond: number;
  refreshLatencyMs: { p50: number; p99: number };
  retries: number;
  retriesByCause: Record<string, number>;
  /** Busiest second of the first refresh wave, when every token issued at sign-up expires together. */
  peakRefreshesPerSecondFleetExpiry: number;
  peakRefreshesPerSecond: number;
  requestsServed: number;
  requestsFailed: number;
  faultsInjected: Record<string, number>;
  /** Devices still signed in at the end whose final request failed. */
  unhealthyAtEnd: number;
}

/**
 * Runs a fleet: signs every device up at once, injects faults for `durationSeconds`, then lets the
 * fleet recover without faults for one token lifetime and 15 s, and checks that every device not
 * robbed of its session still gets data.
 */
export async function runFleet(config: FleetConfig, target: FleetTarget, time: SimulationTime): Promise<FleetReport> {
  const random = new Random(config.seed);
  const metrics = new FleetMetrics();
  let faultsActive = false;
  const context: FleetContext = {
    config,
    time,
    url: target.url,
    fetch: target.fetch,
    crypto: time.trackedCrypto(globalThis.crypto),
    metrics,
    faultsActive: () => faultsActive,
  };
  const devices = Array.from({ length: config.devices }, (_, index) => new SimDevice(index, context, random.fork()));
  const wallStart = performance.now();

  await time.drive(inBatches(devices, config.signUpConcurrency, (device) => device.signUp()));
  const start = time.now();
  const end = start + config.durationSeconds * 1000;
  const ttlMs = target.accessTokenTtlSeconds !== undefined ? target.accessTokenTtlSeconds * 1000 : await issuedLifetime(devices);

  faultsActive = true;
  for (const device of devices) scheduleOutages(device, context, random.fork(), start, end);
  const attackers = scheduleThefts(devices, context, random.fork(), start, ttlMs);
  await time.runUntil(end, config.quantumMs);

  faultsActive = false;
  for (const device of devices) device.endFaults();
  // One token lifetime and a margin: every device refreshes at least once more after the faults.
  await time.runUntil(time.now() + ttlMs + 15_000, config.quantumMs);
  const checks = await time.drive(Promise.all(devices.map((device) => device.check())));
  const fleetSeconds = (time.now() - start) / 1000;
  const wallSeconds = (performance.now() - wallStart) / 1000;

  for (const attacker of attackers) attacker.stop();
  for (const device of devices) device.close();
  for (const record of metrics.signOuts) {
    if (record.stolen && record.reason === 'refresh_token_reused') attackers.find((attacker) => attacker.record.victim === record.device)?.detected(`victim:${record.reason}`);
  }

  const spurious = metrics.signOuts.filter((record) => !record.stolen || !theftSignOutReasons.has(record.reason));
  return {
    devices: config.devices,
    signUpFailures: metrics.signUpFailures,
    fleetSeconds,
    wallSeconds,
    spuriousSignOuts: spurious.length,
    spuriousSignOutReasons: tally(spurious.map((record) => record.reason)),
    theftsInjected: metrics.thefts.length,
    theftsDetected: metrics.thefts.filter((theft) => theft.detectedBy !== undefined).length,
    theftDetections: tally(metrics.thefts.map((theft) => theft.detectedBy ?? 'undetected')),
    attackerRequestsServed: metrics.thefts.reduce((sum, theft) => sum + theft.attackerRequestsServed, 0),
    gatewayReuseDetections: await target.reuseDetections?.(),
    refreshes: metrics.refreshes,
    refreshesPerFleetSecond: metrics.refreshes / fleetSeconds,
    refreshesPerWallSecond: metrics.refreshes / wallSeconds,
    refreshLatencyMs: { p50: percentile(metrics.refreshLatenciesMs, 0.5), p99: percentile(metrics.refreshLatenciesMs, 0.99) },
    retries: [...metrics.retries.values()].reduce((sum, count) => sum + count, 0),
    retriesByCause: Object.fromEntries(metrics.retries),
    peakRefreshesPerSecondFleetExpiry: metrics.peakRefreshesPerSecond(start, start + ttlMs),
    peakRefreshesPerSecond: metrics.peakRefreshesPerSecond(),
    requestsServed: metrics.requestsServed,
    requestsFailed: metrics.requestsFailed,
    faultsInjected: Object.fromEntries(metrics.faults),
    unhealthyAtEnd: devices.filter((device) => device.enrolled && !device.stolen && device.signedOut === undefined && !checks[device.index]).length,
  };
}

/** Gives each device outages as a Poisson process over the run. */
function scheduleOutages(device: SimDevice, context: FleetContext, random: Random, start: number, end: number): void {
  const faults = context.config.faults;
  if (faults.outagesPerDeviceHour <= 0) return;
  const [min, max] = faults.outageSeconds;
  for (let at = start + random.exponential(3600 / faults.outagesPerDeviceHour) * 1000; at < end; at += random.exponential(3600 / faults.outagesPerDeviceHour) * 1000) {
    const duration = random.uniform(min, max) * 1000;
    context.time.timers.setTimeout(() => device.goOffline(duration), at - start);
  }
}

/**
 * Copies the tokens of `stolenDevices` of the fleet to attackers during the first half of the run.
 * Each attacker first uses them between one second and two token lifetimes later.
 */
function scheduleThefts(devices: SimDevice[], context: FleetContext, random: Random, start: number, ttlMs: number): Attacker[] {
  const share = context.config.faults.stolenDevices;
  const count = share > 0 ? Math.max(1, Math.round(devices.length * share)) : 0;
  const victims = [...devices].sort(() => random.next() - 0.5).slice(0, count);
  const attackers: Attacker[] = [];
  const durationMs = context.config.durationSeconds * 1000;

  for (const victim of victims) {
    const record: TheftRecord = { victim: victim.index, stolenAt: 0, detectedBy: undefined, attackerRequestsServed: 0 };
    const attacker = new Attacker(context, random.fork(), record);
    attackers.push(attacker);
    context.time.timers.setTimeout(async () => {
      const tokens = await victim.copyTokens();
      if (!tokens) return;
      record.stolenAt = context.time.now() - start;
      context.metrics.thefts.push(record);
      await attacker.start(tokens, random.uniform(1_000, 2 * ttlMs));
    }, random.uniform(0.1, 0.4) * durationMs);
  }
  return attackers;
}

/** Reads the access-token lifetime the gateway issued to the first device that signed up. */
async function issuedLifetime(devices: SimDevice[]): Promise<number> {
  for (const device of devices) {
    const stored = await device.storage.read('tokens');
    if (stored) return stored.value.accessTokenExpiresAt - stored.value.receivedAt;
  }
  throw new Error('No device could sign up: check that the gateway is reachable and trusts X-Forwarded-For from this host.');
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let index = 0; index < items.length; index += size) {
    await Promise.all(items.slice(index, index + size).map(work));
  }
}

function tally(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
