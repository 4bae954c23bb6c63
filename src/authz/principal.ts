import type { RevocationFreshness } from '../sessions/revocation.ts';
import type { AccessClaims } from '../tokens/access.ts';

export const trustLevels = ['UNKNOWN', 'BASIC', 'ATTESTED', 'TRUSTED'] as const;
export type DeviceTrust = (typeof trustLevels)[number];

export const riskLevels = ['LOW', 'MEDIUM', 'HIGH'] as const;
export type RiskLevel = (typeof riskLevels)[number];

/** Who made the request, as established from a verified access token. */
export interface Principal {
  userId: string;
  sessionId: string;
  deviceId: string;
  scopes: ReadonlySet<string>;
  acr: string;
  amr: readonly string[];
  /** Epoch seconds of the last active authentication. */
  authTime: number;
  /** Epoch seconds. */
  issuedAt: number;
  expiresAt: number;
  tokenId: string;
  tokenType: 'Bearer' | 'DPoP';
  /** JWK thumbprint the token is bound to (`cnf.jkt`), when it is key-bound. */
  jkt: string | undefined;
  /** Whether this request carried a valid DPoP proof for `jkt`. */
  dpopVerified: boolean;
  deviceTrust: DeviceTrust;
  /** Epoch seconds of the device's last passed platform attestation, when it has one. */
  attestedAt?: number;
  riskLevel: RiskLevel;
  /**
   * How far the revocation check of this request can be trusted: `cached` or `stale` when Redis was
   * unreachable and only the in-process view answered. Absent means `verified`.
   */
  revocation?: RevocationFreshness;
}

export function principalFromClaims(
  claims: AccessClaims,
  extra: { dpopVerified?: boolean; deviceTrust?: DeviceTrust; attestedAt?: number; riskLevel?: RiskLevel; revocation?: RevocationFreshness } = {},
): Principal {
  return {
    userId: claims.sub,
    sessionId: claims.sid,
    deviceId: claims.did,
    scopes: new Set(claims.scope.split(' ').filter((scope) => scope.length > 0)),
    acr: claims.acr,
    amr: claims.amr,
    authTime: claims.auth_time,
    issuedAt: claims.iat,
    expiresAt: claims.exp,
    tokenId: claims.jti,
    tokenType: claims.cnf?.jkt ? 'DPoP' : 'Bearer',
    jkt: claims.cnf?.jkt,
    dpopVerified: extra.dpopVerified ?? false,
    // Until a device proves possession of a key or attests, it has the lowest trust and risk inputs.
    deviceTrust: extra.deviceTrust ?? 'UNKNOWN',
    attestedAt: extra.attestedAt,
    riskLevel: extra.riskLevel ?? 'LOW',
    revocation: extra.revocation ?? 'verified',
  };
}

export function trustRank(trust: DeviceTrust): number {
  return trustLevels.indexOf(trust);
}

export function riskRank(risk: RiskLevel): number {
  return riskLevels.indexOf(risk);
}
