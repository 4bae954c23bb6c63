import type { DeviceTrust } from '../authz/principal.ts';
import { isTollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { AccessClaims } from '../tokens/access.ts';
import { dpopFailure, type DpopVerifier, type HttpRequestFacts } from './dpop.ts';
import { thumbprintOf, type DeviceInput } from './registry.ts';
import type { DeviceTrustService } from './trust-service.ts';

/**
 * Requires a sign-in that registers a device key to prove possession of it: the request must carry a
 * DPoP proof signed by `device.publicKey` (htm and htu of this request, no `ath`). A key without such
 * a proof is refused rather than registered unbound, so a key an app reports is always one it holds.
 * Returns the device input marked with the proven thumbprint, which `registerDevice` binds.
 */
export async function proveDeviceKey(dpop: DpopVerifier, http: HttpRequestFacts | undefined, device: DeviceInput): Promise<DeviceInput> {
  if (!device.publicKey) return { ...device, keyProofJkt: undefined };
  const jkt = await thumbprintOf(device.publicKey);

  try {
    const proof = await dpop.verify(http, { jkt });
    return { ...device, keyProofJkt: proof.jkt };
  } catch (error) {
    if (!isTollgateError(error)) throw error;
    if (error.extensions.reason === 'missing') {
      throw dpopFailure('missing', 'device.publicKey needs a DPoP proof signed by that key in the DPoP header of this request.');
    }
    if (error.extensions.reason === 'key_mismatch') {
      throw dpopFailure('key_mismatch', 'The DPoP proof is not signed by device.publicKey: sign it with the key you register.');
    }
    throw error;
  }
}

/**
 * Returns the device trust of a session a sign-in just started. For a key-bound session it writes the
 * device's trust record first, so the session's next request reads the new binding. When Redis fails
 * there, it logs the failure and returns BASIC, and the first request repairs the record.
 */
export async function trustOfNewSession(deps: { deviceTrust: DeviceTrustService; logger: Logger }, deviceId: string, claims: AccessClaims): Promise<DeviceTrust> {
  if (!claims.cnf?.jkt) return 'UNKNOWN';
  try {
    return await deps.deviceTrust.sync(deviceId);
  } catch (error) {
    deps.logger.warn({ err: error, deviceId }, 'device trust record not written after sign-in; the first request repairs it');
    return 'BASIC';
  }
}
