import { randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { z } from 'zod';

import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { Db } from '../store/db.ts';

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

const text = (max: number) => z.string().trim().min(1).max(max);

/** A P-256 public key as a JWK (RFC 7517); private members such as `d` are never accepted. */
export const publicJwkSchema = z.strictObject({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be 32 bytes in base64url'),
  y: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'y must be 32 bytes in base64url'),
});

export const deviceInputSchema = z.object({
  platform: z.enum(['IOS', 'ANDROID', 'WEB', 'OTHER']),
  model: text(100).nullish(),
  osVersion: text(50).nullish(),
  appVersion: text(50).nullish(),
  publicKey: publicJwkSchema.nullish(),
  /**
   * Set by the server after a DPoP proof on the sign-in request proved possession of `publicKey`
   * (`proveDeviceKey`); GraphQL's DeviceInput has no such field, so a client cannot send it. Kept
   * here so a login challenge stores it with the rest of the device input.
   */
  keyProofJkt: z.string().optional(),
});

export type DeviceInput = z.infer<typeof deviceInputSchema>;

export interface RegisteredDevice {
  id: string;
  /** JWK thumbprint of the device key (RFC 7638), when the device registered one. */
  publicKeyThumbprint: string | null;
  /** The thumbprint access tokens are bound to (`cnf.jkt`), once the device proved possession of its key. */
  jkt: string | null;
  isNew: boolean;
}

/** Checks that a JWK is a usable P-256 public key and returns its RFC 7638 thumbprint. */
export async function thumbprintOf(jwk: JWK): Promise<string> {
  try {
    await importJWK({ ...jwk, alg: 'ES256' }, 'ES256');
  } catch {
    throw new TollgateError('BAD_USER_INPUT', 'device.publicKey is not a valid P-256 public key.', { field: 'device.publicKey' });
  }
  return calculateJwkThumbprint(jwk, 'sha256');
}

/**
 * Records the device a session runs on. A device that presents a public key it registered before is
 * the same device, unless the user removed it. A device without a key is recorded anew at every
 * sign-in, since nothing proves it is the same phone. The key becomes bound (BASIC trust, tokens with
 * `cnf.jkt`) when `input.keyProofJkt` shows that a DPoP proof from that key came with the sign-in.
 */
export async function registerDevice(db: Transaction | Db, clock: Clock, userId: string, input: DeviceInput): Promise<RegisteredDevice> {
  const now = clock.now();
  const thumbprint = input.publicKey ? await thumbprintOf(input.publicKey) : null;
  const proven = thumbprint !== null && input.keyProofJkt === thumbprint;
  const details = {
    platform: input.platform,
    model: input.model ?? null,
    osVersion: input.osVersion ?? null,
    appVersion: input.appVersion ?? null,
  };

  if (thumbprint) {
    const known = await db.device.findFirst({ where: { userId, publicKeyThumbprint: thumbprint, removedAt: null } });
    if (known) {
      const binding = proven && known.jkt === null ? { jkt: thumbprint, keyBoundAt: now } : {};
      await db.device.update({ where: { id: known.id }, data: { ...details, ...binding, lastSeenAt: now } });
      return { id: known.id, publicKeyThumbprint: thumbprint, jkt: known.jkt ?? (proven ? thumbprint : null), isNew: false };
    }
  }

  const id = randomUUID();
  await db.device.create({
    data: {
      id,
      userId,
      ...details,
      publicKeyJwk: input.publicKey ?? undefined,
      publicKeyThumbprint: thumbprint,
      ...(proven ? { jkt: thumbprint, keyBoundAt: now, trust: 'BASIC' as const } : {}),
      createdAt: now,
      lastSeenAt: now,
    },
  });
  return { id, publicKeyThumbprint: thumbprint, jkt: proven ? thumbprint : null, isNew: true };
}
