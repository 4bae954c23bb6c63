import { z } from 'zod';

import type { RequestContext } from '../context.ts';
import type { DeviceService } from '../devices/service.ts';
import { attestationPassed } from '../devices/trust.ts';
import { principalOf } from './caller.ts';
import { parseInput } from './input.ts';

type DeviceRow = Awaited<ReturnType<DeviceService['list']>>[number];

const deviceIdSchema = z.uuid({ message: 'id must be a device id' });
const deviceNameSchema = z.string().trim().min(1, 'name must not be empty').max(64, 'name must have at most 64 characters');

export const deviceResolvers = {
  Mutation: {
    async renameDevice(_parent: unknown, args: { id: string; name: string }, context: RequestContext) {
      const principal = principalOf(context);
      const id = parseInput(deviceIdSchema, args.id, 'id');
      const name = parseInput(deviceNameSchema, args.name, 'name');
      return context.services.devices.rename(principal, id, name, context.facts);
    },

    async removeDevice(_parent: unknown, args: { id: string }, context: RequestContext) {
      const principal = principalOf(context);
      const id = parseInput(deviceIdSchema, args.id, 'id');
      await context.services.devices.remove(principal, id, context.facts);
      return true;
    },

    async trustDevice(_parent: unknown, args: { id: string }, context: RequestContext) {
      const principal = principalOf(context);
      const id = parseInput(deviceIdSchema, args.id, 'id');
      return context.services.devices.confirmTrusted(principal, id, context.facts);
    },
  },

  Device: {
    // The trust column stores the level at the last change. Attestation expiry and the trusted period
    // change the level without a write, so the field computes it from the row.
    trust: (device: DeviceRow, _args: unknown, context: RequestContext) => context.services.deviceTrust.policy.trustOf(device, context.clock.now()),
    current: (device: DeviceRow, _args: unknown, context: RequestContext) => device.id === context.auth.principal?.deviceId,
    keyBound: (device: DeviceRow) => device.jkt !== null,
    attestedAt: (device: DeviceRow) => (device.attestationStatus === attestationPassed ? device.attestedAt : null),
    attestationExpiresAt: (device: DeviceRow) => (device.attestationStatus === attestationPassed ? device.attestationExpiresAt : null),
    suspended: (device: DeviceRow) => device.suspendedAt !== null,
  },
};
