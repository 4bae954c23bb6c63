import { principalFromClaims, type Principal } from '../authz/principal.ts';
import { TollgateError } from '../errors.ts';
import { riskLevelFrom, sessionRiskKey } from '../risk/index.ts';
import type { RevocationView } from '../sessions/revocation.ts';
import type { AccessClaims } from '../tokens/access.ts';
import { dpopFailure, type DpopVerifier, type HttpRequestFacts } from './dpop.ts';
import { trustRecordKey } from './trust.ts';
import type { DeviceTrustService } from './trust-service.ts';

export interface KeyBoundDeps {
  revocation: RevocationView;
  dpop: DpopVerifier;
  deviceTrust: DeviceTrustService;
}

export interface KeyBoundRequest {
  token: string;
  claims: AccessClaims & { cnf: { jkt: string } };
  /** The Authorization scheme as sent, in any case. */
  scheme: string;
  http: HttpRequestFacts | undefined;
}

/**
 * Authenticates a request whose access token is bound to a device key (`cnf.jkt`). RFC 9449 §7.1:
 * the token comes with the DPoP scheme and a proof signed by that key over this request, carrying the
 * token's hash in `ath`.
 *
 * The device trust record and the session's risk level are read in the revocation check's MGET, and
 * the proof's `jti` is recorded in the same event-loop turn, so the Redis client's auto-pipelining
 * sends both commands as one round trip. Nothing here reads PostgreSQL.
 */
export async function authenticateKeyBound(deps: KeyBoundDeps, request: KeyBoundRequest): Promise<Principal> {
  const { claims } = request;
  if (request.scheme.toLowerCase() !== 'dpop') {
    throw dpopFailure('wrong_scheme', 'This access token is bound to a device key: send it as "Authorization: DPoP <token>" with a DPoP proof.');
  }
  const proof = await deps.dpop.check(request.http, { accessToken: request.token, jkt: claims.cnf.jkt });

  const subject = { sessionId: claims.sid, deviceId: claims.did, userId: claims.sub, issuedAt: claims.iat };
  const [, revocation] = await Promise.all([deps.dpop.consume(proof), deps.revocation.check(subject, [sessionRiskKey(claims.sid), trustRecordKey(claims.did)])]);
  if (revocation.revoked) throw new TollgateError('TOKEN_REVOKED');

  const [riskLevel, trustRecord] = revocation.extra ?? [];
  const trust = deps.deviceTrust.liveTrust(claims.did, claims.cnf.jkt, trustRecord);
  return principalFromClaims(claims, {
    dpopVerified: true,
    deviceTrust: trust.trust,
    ...(trust.attestedAt !== undefined ? { attestedAt: trust.attestedAt } : {}),
    revocation: revocation.freshness,
    riskLevel: riskLevelFrom(riskLevel),
  });
}
