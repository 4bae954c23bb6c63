import { KeyObject, randomUUID, sign } from 'node:crypto';

import { errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';

import { epochSeconds, type Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { SigningKeyRing } from './keyring.ts';

const signingKeys = new WeakMap<CryptoKey, KeyObject>();

/**
 * Signs an ES256 JWS in compact serialization (RFC 7515 §7.1) with node:crypto, which signs in
 * place where WebCrypto schedules a job on the thread pool for each token.
 */
function signCompactJws(header: JWTHeaderParameters, claims: object, privateKey: CryptoKey): string {
  let key = signingKeys.get(privateKey);
  if (!key) {
    key = KeyObject.from(privateKey);
    signingKeys.set(privateKey, key);
  }
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  // JWS ES256 signatures are R and S as two 32-byte big-endian integers (RFC 7518 §3.4), not DER.
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const claimsSchema = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  sub: z.string().min(1),
  sid: z.string().min(1),
  did: z.string().min(1),
  jti: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
  scope: z.string(),
  acr: z.string().min(1),
  amr: z.array(z.string()),
  auth_time: z.number().int(),
  cnf: z.object({ jkt: z.string().min(1) }).optional(),
});

/** Verified access-token claims (RFC 9068 profile plus Tollgate's `sid` and `did`). */
export type AccessClaims = z.infer<typeof claimsSchema>;

export interface AccessTokenInput {
  userId: string;
  sessionId: string;
  deviceId: string;
  scopes: string[];
  acr: string;
  amr: string[];
  authTime: Date;
  /** JWK SHA-256 thumbprint of the device key when the session is key-bound (RFC 9449 §6). */
  jkt?: string | null;
}

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
  claims: AccessClaims;
}

export interface AccessTokenOptions {
  ring: SigningKeyRing;
  clock: Clock;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clockSkewSeconds: number;
  /** Maximum number of verified tokens kept; 0 turns the cache off. */
  cacheSize: number;
}

interface CachedVerification {
  claims: AccessClaims;
  kid: string;
}

/**
 * Signs and verifies ES256 access tokens. A verified token is cached until it expires, so the
 * signature is checked once per token rather than once per request; the cache is bounded by
 * `cacheSize` entries and evicts the least recently used.
 */
export class AccessTokenService {
  private readonly cache: LRUCache<string, CachedVerification> | undefined;

  constructor(private readonly options: AccessTokenOptions) {
    this.cache = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize }) : undefined;
  }

  async issue(input: AccessTokenInput): Promise<IssuedAccessToken> {
    const key = this.options.ring.signingKey();
    const iat = epochSeconds(this.options.clock.now());
    const claims: AccessClaims = {
      iss: this.options.issuer,
      aud: this.options.audience,
      sub: input.userId,
      sid: input.sessionId,
      did: input.deviceId,
      jti: randomUUID(),
      iat,
      exp: iat + this.options.ttlSeconds,
      scope: input.scopes.join(' '),
      acr: input.acr,
      amr: input.amr,
      auth_time: epochSeconds(input.authTime),
      ...(input.jkt ? { cnf: { jkt: input.jkt } } : {}),
    };
    const header: JWTHeaderParameters = { alg: 'ES256', typ: 'at+jwt', kid: key.kid };
    const token = signCompactJws(header, claims, key.privateKey as CryptoKey);
    return { token, expiresAt: new Date(claims.exp * 1000), claims };
  }

  /**
   * Verifies a compact JWT: ES256 only, a key of the ring, exact `iss` and `aud`, `typ: at+jwt`, and
   * `exp`, `nbf` and `iat` within the configured clock skew. Throws `TOKEN_EXPIRED` or `TOKEN_INVALID`.
   */
  async verify(token: string): Promise<AccessClaims> {
    const now = epochSeconds(this.options.clock.now());
    const cached = this.cache?.get(token);
    if (cached) {
      if (cached.claims.exp + this.options.clockSkewSeconds <= now) {
        this.cache?.delete(token);
        throw new TollgateError('TOKEN_EXPIRED');
      }
      // A key taken out of the ring (rotated out past its overlap, or revoked) ends its cached tokens too.
      if (!this.options.ring.verificationKey(cached.kid)) {
        this.cache?.delete(token);
        throw new TollgateError('TOKEN_INVALID');
      }
      return cached.claims;
    }

    const { claims, kid } = await this.verifySignedToken(token, now);
    if (this.cache) {
      const ttlMs = (claims.exp + this.options.clockSkewSeconds - now) * 1000;
      if (ttlMs > 0) this.cache.set(token, { claims, kid }, { ttl: ttlMs });
    }
    return claims;
  }

  /** Removes every cached verification; used when a key is revoked. */
  clearCache(): void {
    this.cache?.clear();
  }

  get cachedCount(): number {
    return this.cache?.size ?? 0;
  }

  private async verifySignedToken(token: string, now: number): Promise<CachedVerification> {
    let kid = '';
    try {
      const { payload, protectedHeader } = await jwtVerify(
        token,
        (header) => {
          const key = typeof header.kid === 'string' ? this.options.ring.verificationKey(header.kid) : undefined;
          if (!key) throw new joseErrors.JWKSNoMatchingKey();
          kid = header.kid as string;
          return key;
        },
        {
          algorithms: ['ES256'],
          issuer: this.options.issuer,
          audience: this.options.audience,
          typ: 'at+jwt',
          clockTolerance: this.options.clockSkewSeconds,
          currentDate: new Date(now * 1000),
          requiredClaims: ['iat', 'exp', 'jti', 'sub'],
        },
      );
      if (protectedHeader.typ !== 'at+jwt') throw new TollgateError('TOKEN_INVALID');
      if (payload.iat !== undefined && payload.iat > now + this.options.clockSkewSeconds) throw new TollgateError('TOKEN_INVALID');
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) throw new TollgateError('TOKEN_INVALID');
      return { claims: parsed.data, kid };
    } catch (error) {
      if (error instanceof TollgateError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new TollgateError('TOKEN_EXPIRED');
      throw new TollgateError('TOKEN_INVALID');
    }
  }
}
