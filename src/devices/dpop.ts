import { createHash, createHmac, createPublicKey, hkdfSync, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

import { decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';

import { epochSeconds, type Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { StateStore } from '../store/state.ts';
import type { DpopConfig } from './config.ts';

/**
 * DPoP proof verification (RFC 9449 §4.3). A proof is a JWT the device signs with its key for one
 * HTTP request. Proofs bind access and refresh tokens to that key, so a stolen token is useless
 * without the device. Every failure is `DPOP_PROOF_INVALID` with its own `reason`.
 */

/** The parts of an HTTP request a proof must match. */
export interface HttpRequestFacts {
  method: string;
  /** The request target as received: path and query. */
  url: string;
  /** The `DPoP` header; an array when the request repeated it. */
  dpop: string | string[] | undefined;
}

export type DpopFailureReason =
  | 'missing'
  | 'malformed'
  | 'bad_typ'
  | 'bad_alg'
  | 'bad_jwk'
  | 'bad_signature'
  | 'htm_mismatch'
  | 'htu_mismatch'
  | 'stale_iat'
  | 'future_iat'
  | 'replayed_jti'
  | 'ath_mismatch'
  | 'key_mismatch'
  | 'nonce_required'
  | 'wrong_scheme';

export function dpopFailure(reason: DpopFailureReason, message: string): TollgateError {
  return new TollgateError('DPOP_PROOF_INVALID', message, { reason });
}

/** Expectations of a proof besides the request itself. */
export interface ProofExpectation {
  /** The access token the request carries: the proof's `ath` must be its SHA-256 (RFC 9449 §4.3 step 12). */
  accessToken?: string | undefined;
  /** The JWK thumbprint the proof key must have: the token's `cnf.jkt` or the registered device key. */
  jkt?: string | undefined;
}

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key. */
  jkt: string;
  jti: string;
  iat: number;
}

/** Longer proofs are rejected unread. An ES256 proof with a P-256 JWK is about 600 bytes. */
const maxProofLength = 4096;

// RFC 9449 §4.2: the header carries the public key only. Private members (`d`) and any member not
// listed here are rejected, so a proof can never carry key material the server would have to discard.
const proofJwkSchema = z.strictObject({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  kid: z.string().max(256).optional(),
  alg: z.literal('ES256').optional(),
  use: z.literal('sig').optional(),
});

type ProofJwk = z.infer<typeof proofJwkSchema>;

const proofClaimsSchema = z.object({
  jti: z.string().min(1).max(256),
  htm: z.string().min(1).max(16),
  htu: z.string().min(1).max(2048),
  iat: z.number().int(),
  ath: z.string().max(128).optional(),
  nonce: z.string().max(256).optional(),
});

/** RFC 7638 thumbprint of a P-256 key: SHA-256 over the required members in lexicographic order. */
export function jwkThumbprint(jwk: { crv: string; kty: string; x: string; y: string }): string {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** RFC 9449 §4.2: `ath` is the base64url SHA-256 of the access token's ASCII bytes. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

const unreserved = /[A-Za-z0-9\-._~]/;

/**
 * Normalises an http(s) URI for comparison (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2 and §6.2.3): lower-case
 * scheme and host, no default port, dot segments removed, an empty path as `/`, percent-encodings in
 * upper case and unreserved characters decoded. Returns undefined for anything else, and for a URI
 * with a query, a fragment or user information, which an `htu` must not contain.
 */
export function normaliseHtu(value: string): string | undefined {
  if (value.includes('?') || value.includes('#')) return undefined;
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;

  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (escape) => {
    const character = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return unreserved.test(character) ? character : escape.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

export interface DpopVerifierDeps {
  clock: Clock;
  state: StateStore;
  config: DpopConfig;
  /** Secret the server nonces are derived from; the master key, so every instance derives the same nonces. */
  masterKey: Buffer;
}

/** Distinct request paths whose expected `htu` is kept; only `/graphql` needs proofs today. */
const maxCachedPaths = 64;

/**
 * Verifies DPoP proofs. Imported proof keys are kept in a bounded LRU cache by JWK thumbprint, so a
 * device's key is imported once, not once per request. Replayed `jti` values are detected in Redis.
 */
export class DpopVerifier {
  private readonly keys: LRUCache<string, KeyObject> | undefined;
  private readonly expectedHtus = new Map<string, string>();
  private readonly nonceKey: Buffer;
  private readonly publicUrl: string;

  constructor(private readonly deps: DpopVerifierDeps) {
    this.keys = deps.config.keyCacheSize > 0 ? new LRUCache({ max: deps.config.keyCacheSize }) : undefined;
    this.nonceKey = Buffer.from(hkdfSync('sha256', deps.masterKey, Buffer.alloc(0), 'tollgate dpop nonce', 32));
    const publicUrl = normaliseHtu(deps.config.publicUrl);
    if (!publicUrl) throw new Error(`TOLLGATE_PUBLIC_URL must be an http(s) URL without query or fragment, got ${deps.config.publicUrl}`);
    this.publicUrl = publicUrl.replace(/\/+$/, '');
  }

  get nonceRequired(): boolean {
    return this.deps.config.nonceRequired;
  }

  /** Verifies the request's proof, then records its `jti` and rejects one seen before. */
  async verify(http: HttpRequestFacts | undefined, expected: ProofExpectation = {}): Promise<VerifiedProof> {
    const proof = await this.check(http, expected);
    await this.consume(proof);
    return proof;
  }

  /** Runs every check but the replay check; call `consume` before trusting the result. */
  async check(http: HttpRequestFacts | undefined, expected: ProofExpectation = {}): Promise<VerifiedProof> {
    if (!http) throw dpopFailure('missing', 'This request needs a DPoP proof in the DPoP header.');
    const compact = singleProof(http.dpop);
    const header = decodeHeader(compact);

    if (header.typ !== 'dpop+jwt') throw dpopFailure('bad_typ', 'The DPoP proof header must have typ "dpop+jwt".');
    // RFC 9449 §4.3 step 5: an asymmetric algorithm this server supports; `none` and HMAC never are.
    if (header.alg !== 'ES256') throw dpopFailure('bad_alg', `The DPoP proof alg ${JSON.stringify(header.alg)} is not accepted: sign proofs with ES256.`);
    const jwk = proofJwkSchema.safeParse(header.jwk);
    if (!jwk.success) throw dpopFailure('bad_jwk', 'The DPoP proof jwk header must be a P-256 public key (kty, crv, x, y) without private members.');

    const jkt = jwkThumbprint(jwk.data);
    const key = await this.importKey(jkt, jwk.data);
    const claims = verifySignature(compact, header, key);

    this.checkRequest(claims, http);
    this.checkTime(claims.iat);
    this.checkNonce(claims.nonce);
    if (expected.accessToken !== undefined && claims.ath !== accessTokenHash(expected.accessToken)) {
      throw dpopFailure('ath_mismatch', 'The DPoP proof ath must be the base64url SHA-256 of the access token it is sent with.');
    }
    if (expected.jkt !== undefined && jkt !== expected.jkt) {
      throw dpopFailure('key_mismatch', "The DPoP proof is signed with a key other than the one this token or device is bound to.");
    }
    return { jkt, jti: claims.jti, iat: claims.iat };
  }

  /**
   * Records the proof's `jti` for the whole window in which its `iat` is accepted, so the proof is
   * used once (RFC 9449 §11.1). Throws SERVICE_UNAVAILABLE when Redis cannot record it: without the
   * record a replay could not be detected.
   */
  async consume(proof: VerifiedProof): Promise<void> {
    const key = `dpop:jti:${proof.jkt}:${createHash('sha256').update(proof.jti).digest('base64url')}`;
    const ttlSeconds = this.deps.config.maxAgeSeconds + this.deps.config.maxFutureSeconds + 1;
    let fresh: boolean;
    try {
      fresh = await this.deps.state.setIfAbsent(key, '1', ttlSeconds);
    } catch {
      throw new TollgateError('SERVICE_UNAVAILABLE', 'The DPoP proof could not be checked for replay: retry with a new proof.', { retryAfterSeconds: 1 });
    }
    if (!fresh) throw dpopFailure('replayed_jti', 'The DPoP proof was already used: sign a new proof with a fresh jti for every request.');
  }

  /** The `htu` a proof for a request to `url` must carry: the public URL plus the path, without the query. */
  expectedHtu(url: string): string {
    const path = url.split('?', 1)[0] ?? '/';
    const cached = this.expectedHtus.get(path);
    if (cached) return cached;
    const htu = normaliseHtu(`${this.publicUrl}${path.startsWith('/') ? path : `/${path}`}`) ?? `${this.publicUrl}/`;
    if (this.expectedHtus.size < maxCachedPaths) this.expectedHtus.set(path, htu);
    return htu;
  }

  /** Returns the nonce to send in `DPoP-Nonce` now (RFC 9449 §8). It stays valid for two proof windows. */
  currentNonce(): string {
    return this.nonceFor(this.nonceWindow());
  }

  private nonceWindow(): number {
    return Math.floor(epochSeconds(this.deps.clock.now()) / this.deps.config.maxAgeSeconds);
  }

  private nonceFor(window: number): string {
    const mac = createHmac('sha256', this.nonceKey).update(String(window)).digest().subarray(0, 16);
    return `${window.toString(36)}.${mac.toString('base64url')}`;
  }

  private async importKey(jkt: string, jwk: ProofJwk): Promise<KeyObject> {
    const cached = this.keys?.get(jkt);
    if (cached) return cached;
    let key: KeyObject;
    try {
      // A node:crypto key verifies synchronously, about twice as fast as a WebCrypto key through jose.
      key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
    } catch {
      throw dpopFailure('bad_jwk', 'The DPoP proof jwk header is not a valid P-256 public key.');
    }
    this.keys?.set(jkt, key);
    return key;
  }

  private checkRequest(claims: z.infer<typeof proofClaimsSchema>, http: HttpRequestFacts): void {
    if (claims.htm !== http.method) {
      throw dpopFailure('htm_mismatch', `The DPoP proof htm ${JSON.stringify(claims.htm)} does not match the request method ${http.method}.`);
    }
    const expected = this.expectedHtu(http.url);
    if (normaliseHtu(claims.htu) !== expected) {
      throw dpopFailure('htu_mismatch', `The DPoP proof htu must be ${expected}, the request URL without query or fragment.`);
    }
  }

  private checkTime(iat: number): void {
    const now = epochSeconds(this.deps.clock.now());
    if (now - iat > this.deps.config.maxAgeSeconds) {
      throw dpopFailure('stale_iat', `The DPoP proof iat is more than ${this.deps.config.maxAgeSeconds} s old: sign a new proof with the current time.`);
    }
    if (iat - now > this.deps.config.maxFutureSeconds) {
      throw dpopFailure('future_iat', `The DPoP proof iat is more than ${this.deps.config.maxFutureSeconds} s in the future: correct the device clock, for example from the Date response header.`);
    }
  }

  private checkNonce(nonce: string | undefined): void {
    if (!this.deps.config.nonceRequired) return;
    const window = this.nonceWindow();
    if (nonce !== undefined && (sameText(nonce, this.nonceFor(window)) || sameText(nonce, this.nonceFor(window - 1)))) return;
    throw dpopFailure('nonce_required', 'The DPoP proof must carry the nonce from the latest DPoP-Nonce response header.');
  }
}

function sameText(left: string, right: string): boolean {
  const a = Buffer.from(left);
  const b = Buffer.from(right);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 9449 §4.3 step 1: exactly one `DPoP` header with one JWT. Node.js joins repeated headers with ", ". */
function singleProof(header: string | string[] | undefined): string {
  if (header === undefined || header === '') throw dpopFailure('missing', 'This request needs a DPoP proof in the DPoP header.');
  if (Array.isArray(header) || header.includes(',')) throw dpopFailure('malformed', 'Send exactly one DPoP header with one proof.');
  if (header.length > maxProofLength) throw dpopFailure('malformed', `The DPoP proof is longer than ${maxProofLength} characters.`);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(header)) throw dpopFailure('malformed', 'The DPoP proof is not a compact JWS (three base64url parts).');
  return header;
}

function decodeHeader(compact: string): ProtectedHeaderParameters {
  try {
    return decodeProtectedHeader(compact);
  } catch {
    throw dpopFailure('malformed', 'The DPoP proof header is not base64url-encoded JSON.');
  }
}

/**
 * Verifies the JWS signature (RFC 7515 §5.2) with ES256: the signature is the 64-byte r || s pair
 * over `header.payload`. The header's alg and typ were checked before; a `crit` header is refused,
 * since no extension is understood here (RFC 7515 §4.1.11).
 */
function verifySignature(compact: string, header: ProtectedHeaderParameters, key: KeyObject): z.infer<typeof proofClaimsSchema> {
  if (header.crit !== undefined) throw dpopFailure('malformed', 'The DPoP proof header has a crit member, which this server does not understand.');
  const parts = compact.split('.');
  if (parts.length !== 3) throw dpopFailure('malformed', 'The DPoP proof is not a compact JWS of three parts.');
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

  const signature = Buffer.from(encodedSignature, 'base64url');
  let valid = false;
  try {
    valid = signature.length === 64 && verify('sha256', Buffer.from(`${encodedHeader}.${encodedPayload}`), { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw dpopFailure('bad_signature', 'The DPoP proof signature does not verify with the key in its jwk header.');
  }
  const payload = Buffer.from(encodedPayload, 'base64url');

  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw dpopFailure('malformed', 'The DPoP proof payload is not JSON.');
  }
  const parsed = proofClaimsSchema.safeParse(claims);
  if (!parsed.success) throw dpopFailure('malformed', 'The DPoP proof needs the claims jti, htm, htu and iat (a number of seconds).');
  return parsed.data;
}

/** Builds the request facts a proof is checked against from a Fastify request. */
export function httpFactsOf(request: { method: string; url: string; headers: Record<string, string | string[] | undefined> }): HttpRequestFacts {
  return { method: request.method, url: request.url, dpop: request.headers.dpop };
}
