import { z } from 'zod';

const probability = z.number().min(0).max(1);
const range = z.tuple([z.number().min(0), z.number().min(0)]).refine(([min, max]) => min <= max, 'the minimum must not exceed the maximum');

/** How often each fault is injected while the fleet runs. */
export const faultRatesSchema = z.object({
  /** Per refresh: the server commits the rotation, then the response is lost. */
  dropAfterCommit: probability.default(0.05),
  /** Per request: no response before the client's timeout; half never reach the server, half lose the response. */
  timeout: probability.default(0.02),
  /** Per request: the network delivers it twice, and the client sees one of the two responses. */
  duplicate: probability.default(0.02),
  /** Share of devices whose clock is off by up to `maxClockOffsetHours` either way. */
  skewedClocks: probability.default(0.5),
  maxClockOffsetHours: z.number().min(0).max(24).default(12),
  /** Per refresh: the app is killed before sending, after the server committed, or after storing the new pair. */
  killDuringRefresh: probability.default(0.03),
  /** Seconds until a killed app is launched again from its storage. */
  relaunchDelaySeconds: range.default([2, 120]),
  /** Outages per device per simulated hour; the device's network is down for `outageSeconds`. */
  outagesPerDeviceHour: z.number().min(0).default(2),
  outageSeconds: range.default([60, 300]),
  /** Share of devices whose stored tokens are copied to an attacker's device. */
  stolenDevices: probability.default(0.01),
});

export const fleetConfigSchema = z.object({
  devices: z.number().int().min(1).default(1000),
  /** Simulated seconds of traffic with faults, before the fault-free drain and the final check. */
  durationSeconds: z.number().min(1).default(600),
  /** Mean seconds between an app's requests. */
  requestIntervalSeconds: z.number().min(0.1).default(20),
  /** Share of devices that also run an app extension sharing the app's token storage. */
  extensionDevices: probability.default(0.2),
  /** Mean seconds between launches of an extension, which makes one request and exits. */
  extensionIntervalSeconds: z.number().min(1).default(120),
  signUpConcurrency: z.number().int().min(1).default(16),
  /** Sign up without device keys, so sessions are bearer sessions without DPoP. */
  bearerSessions: z.boolean().default(false),
  /** Timers due within this many milliseconds fire together on virtual time, so requests overlap. */
  quantumMs: z.number().min(0).default(100),
  seed: z.number().int().default(1),
  faults: faultRatesSchema.default(faultRatesSchema.parse({})),
});

export type FaultRates = z.infer<typeof faultRatesSchema>;
export type FleetConfig = z.infer<typeof fleetConfigSchema>;
export type FleetConfigInput = z.input<typeof fleetConfigSchema>;

export function fleetConfig(input: FleetConfigInput = {}): FleetConfig {
  return fleetConfigSchema.parse(input);
}
