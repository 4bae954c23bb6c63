import { base64url, randomId, type CryptoProvider } from './environment.ts';
import type { TokenStorage } from './storage.ts';

/** A P-256 public key as a JWK with only the members RFC 7518 §6.2.1 requires. */
export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

const keyAlgorithm: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signAlgorithm: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/**
 * Returns the device key pair from storage, creating it on first use. The private key is generated
 * non-extractable, so no code path can read or export it. When two processes create a key at once,
 * the compare-and-set lets one win and both use the winner.
 */
export async function loadOrCreateDeviceKey(storage: TokenStorage, crypto: CryptoProvider): Promise<CryptoKeyPair> {
  const existing = await storage.read('deviceKey');
  if (existing) return existing.value;

  const created = (await crypto.subtle.generateKey(keyAlgorithm, false, ['sign', 'verify'])) as CryptoKeyPair;
  const result = await storage.compareAndSet('deviceKey', null, created);
  if (result.written) return created;

  const winner = await storage.read('deviceKey');
  if (!winner) throw new Error('The device key slot was emptied while it was being created: retry.');
  return winner.value;
}

export async function publicJwkOf(keyPair: CryptoKeyPair, crypto: CryptoProvider): Promise<PublicJwk> {
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new Error('The device key is not a P-256 key.');
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

export interface ProofInput {
  method: string;
  url: string;
  /** Server time in epoch milliseconds. */
  serverNow: number;
  /** The access token the request carries; its hash becomes `ath`. Refresh requests carry none. */
  accessToken?: string | undefined;
  /** The last `DPoP-Nonce` the server sent, if any (RFC 9449 §8). */
  nonce?: string | undefined;
}

/** Signs DPoP proofs (RFC 9449 §4.2) with the device key. */
export class DpopSigner {
  private constructor(
    private readonly keyPair: CryptoKeyPair,
    private readonly jwk: PublicJwk,
    private readonly crypto: CryptoProvider,
  ) {}

  static async create(keyPair: CryptoKeyPair, crypto: CryptoProvider): Promise<DpopSigner> {
    return new DpopSigner(keyPair, await publicJwkOf(keyPair, crypto), crypto);
  }

  get publicJwk(): PublicJwk {
    return this.jwk;
  }

  async proof(input: ProofInput): Promise<string> {
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: this.jwk };
    const payload: Record<string, unknown> = {
      jti: randomId(this.crypto),
      htm: input.method.toUpperCase(),
      htu: htuOf(input.url),
      iat: Math.floor(input.serverNow / 1000),
    };
    if (input.accessToken !== undefined) payload.ath = await this.sha256(input.accessToken);
    if (input.nonce !== undefined) payload.nonce = input.nonce;

    const signingInput = `${encodeJson(header)}.${encodeJson(payload)}`;
    // Web Crypto returns ECDSA signatures as r || s, the JWS encoding of ES256 (RFC 7518 §3.4).
    const signature = await this.crypto.subtle.sign(signAlgorithm, this.keyPair.privateKey, new TextEncoder().encode(signingInput));
    return `${signingInput}.${base64url(new Uint8Array(signature))}`;
  }

  private async sha256(text: string): Promise<string> {
    return base64url(new Uint8Array(await this.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));
  }
}

/** RFC 9449 §4.2: `htu` is the request URI without query and fragment. */
export function htuOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

function encodeJson(value: unknown): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

/**
 * The DPoP proofs of one client: signed with the device key from storage, dated on the server's
 * clock, and carrying the latest `DPoP-Nonce` the server sent.
 */
export class DeviceProofs {
  private signer: DpopSigner | undefined;
  nonce: string | undefined;

  constructor(
    private readonly storage: TokenStorage,
    private readonly crypto: CryptoProvider,
    private readonly serverNow: () => number,
  ) {}

  use(signer: DpopSigner): void {
    this.signer = signer;
  }

  /** Signs a proof for one request; returns undefined when storage holds no device key. */
  async sign(method: string, url: string, accessToken?: string): Promise<string | undefined> {
    const signer = await this.load();
    return signer?.proof({ method, url, serverNow: this.serverNow(), accessToken, nonce: this.nonce });
  }

  private async load(): Promise<DpopSigner | undefined> {
    if (this.signer) return this.signer;
    const stored = await this.storage.read('deviceKey');
    if (!stored) return undefined;
    this.signer ??= await DpopSigner.create(stored.value, this.crypto);
    return this.signer;
  }
}
