import { randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

import type { Clock } from '../clock.ts';
import { open, seal } from '../crypto/index.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/db.ts';
import type { StateStore } from '../store/state.ts';

/** A signing key as the ring keeps it in memory. */
export interface RingKey {
  kid: string;
  state: 'NEXT' | 'ACTIVE' | 'RETIRED';
  publicJwk: JWK;
  publicKey: CryptoKey;
  /** Present for the active key only: no other key ever signs. */
  privateKey: CryptoKey | undefined;
  retiredAt: Date | null;
}

export interface KeyRingOptions {
  db: Db;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  masterKey: Buffer;
  /** Maximum lifetime of a token the keys sign, plus clock skew: how long a retired key still verifies. */
  verificationOverlapSeconds: number;
  /** How often every instance re-reads the ring, in addition to the broadcast on rotation. */
  reloadIntervalSeconds?: number;
}

const keysChannel = 'keys';
// First key of the two-key advisory lock that serialises ring changes across instances, so two
// gateways starting at once do not both create keys. The second key is the table's oid, which keeps
// deployments in separate schemas of one database from waiting on each other.
const ringLockClass = 0x746f6c6c;

/** Error for a master key that cannot open a signing key: the keys were sealed under another one. */
export class MasterKeyMismatchError extends Error {
  override name = 'MasterKeyMismatchError';
}

function openPrivateKey(masterKey: Buffer, sealed: Uint8Array, kid: string): Buffer {
  try {
    return open(masterKey, sealed, sealingContext(kid));
  } catch {
    throw new MasterKeyMismatchError(
      `signing key ${kid} could not be decrypted: TOLLGATE_MASTER_KEY is not the key this database's signing keys were sealed with. Set the master key the deployment was created with.`,
    );
  }
}

function sealingContext(kid: string): string {
  return `signing-key:${kid}`;
}

/**
 * The ES256 signing-key ring, stored in PostgreSQL with private keys sealed under the master key.
 * States: NEXT (published, not yet signing), ACTIVE (signs), RETIRED (verifies until every token it
 * signed has expired). Publishing NEXT ahead of use means every instance already trusts a key before
 * any instance signs with it.
 */
export class SigningKeyRing {
  private keys = new Map<string, RingKey>();
  private active: RingKey | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KeyRingOptions) {}

  /** Creates the first keys when the ring is empty, loads it, and keeps it current. */
  async start(): Promise<void> {
    await this.ensureKeys();
    await this.reload();
    await this.options.state.subscribe(keysChannel, () => {
      this.reload().catch((error: unknown) => this.options.logger.error({ err: error }, 'signing-key ring reload failed'));
    });
    const interval = (this.options.reloadIntervalSeconds ?? 60) * 1000;
    this.timer = setInterval(() => {
      this.reload().catch((error: unknown) => this.options.logger.error({ err: error }, 'signing-key ring reload failed'));
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  signingKey(): RingKey {
    if (!this.active?.privateKey) {
      throw new Error('signing-key ring has no active key: run `npx tollgate keys rotate` or restart to create one');
    }
    return this.active;
  }

  /** Returns the public key for `kid` when tokens it signed may still be valid, else undefined. */
  verificationKey(kid: string): CryptoKey | undefined {
    const key = this.keys.get(kid);
    if (!key || !this.isPublished(key)) return undefined;
    return key.publicKey;
  }

  /** Returns the JSON Web Key Set (RFC 7517): next, active, and retired keys still inside the overlap. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.keys.values()].filter((key) => this.isPublished(key)).map((key) => key.publicJwk) };
  }

  private isPublished(key: RingKey): boolean {
    if (key.state !== 'RETIRED') return true;
    if (!key.retiredAt) return false;
    const ageSeconds = (this.options.clock.now().getTime() - key.retiredAt.getTime()) / 1000;
    return ageSeconds <= this.options.verificationOverlapSeconds;
  }

  async reload(): Promise<void> {
    const rows = await this.options.db.signingKey.findMany({ orderBy: { createdAt: 'asc' } });
    const keys = new Map<string, RingKey>();
    let active: RingKey | undefined;

    for (const row of rows) {
      // A revoked key is dropped whole: it neither signs, nor verifies, nor appears in the JWKS.
      if (row.revokedAt) continue;
      const publicJwk = row.publicJwk as JWK;
      const publicKey = (await importJWK(publicJwk, 'ES256')) as CryptoKey;
      let privateKey: CryptoKey | undefined;
      if (row.state === 'ACTIVE') {
        const privateJwk = JSON.parse(openPrivateKey(this.options.masterKey, row.privateKeyEncrypted, row.kid).toString('utf8')) as JWK;
        privateKey = (await importJWK(privateJwk, 'ES256')) as CryptoKey;
      }
      const key: RingKey = { kid: row.kid, state: row.state, publicJwk, publicKey, privateKey, retiredAt: row.retiredAt };
      keys.set(row.kid, key);
      if (row.state === 'ACTIVE') active = key;
    }

    this.keys = keys;
    this.active = active;
  }

  /** Creates an active and a next key where missing. Safe to call from several instances at once. */
  async ensureKeys(): Promise<void> {
    await this.options.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ringLockClass}::int, 'signing_keys'::regclass::oid::int)`;
      const states = new Set((await tx.signingKey.findMany({ where: { state: { in: ['ACTIVE', 'NEXT'] } }, select: { state: true } })).map((row) => row.state));
      const now = this.options.clock.now();
      if (!states.has('ACTIVE')) {
        await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'ACTIVE', createdAt: now, activatedAt: now } });
        this.options.logger.info('signing-key ring created its first active key');
      }
      if (!states.has('NEXT')) {
        await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'NEXT', createdAt: now } });
      }
    });
  }

  /**
   * Promotes the next key to active, retires the active one, and creates a new next key. Tokens signed
   * by the retired key stay valid until they expire. Returns the new active kid.
   */
  async rotate(): Promise<{ activeKid: string; retiredKid: string | undefined }> {
    const result = await this.options.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ringLockClass}::int, 'signing_keys'::regclass::oid::int)`;
      const now = this.options.clock.now();
      const current = await tx.signingKey.findFirst({ where: { state: 'ACTIVE' } });
      let next = await tx.signingKey.findFirst({ where: { state: 'NEXT' }, orderBy: { createdAt: 'asc' } });
      if (!next) {
        next = await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'NEXT', createdAt: now } });
      }
      if (current) {
        await tx.signingKey.update({ where: { kid: current.kid }, data: { state: 'RETIRED', retiredAt: now } });
      }
      await tx.signingKey.update({ where: { kid: next.kid }, data: { state: 'ACTIVE', activatedAt: now } });
      await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'NEXT', createdAt: now } });
      return { activeKid: next.kid, retiredKid: current?.kid };
    });

    await this.reload();
    await this.options.state.publish(keysChannel, 'rotated').catch((error: unknown) => {
      this.options.logger.warn({ err: error }, 'could not broadcast key rotation; other instances pick it up on their next periodic reload');
    });
    return result;
  }

  /**
   * Takes a compromised key out of the ring on every instance: sets `revokedAt`, rotates first when
   * it is the active key, and broadcasts, so each instance's next reload rejects every token it
   * signed (cached verifications included, since they re-check the key). Returns the active kid.
   */
  async revoke(kid: string): Promise<{ revokedKid: string; activeKid: string; wasActive: boolean }> {
    const result = await this.options.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ringLockClass}::int, 'signing_keys'::regclass::oid::int)`;
      const now = this.options.clock.now();
      const key = await tx.signingKey.findUnique({ where: { kid } });
      if (!key) throw new TollgateError('BAD_USER_INPUT', `kid: no signing key ${kid}; list the keys with \`npx tollgate keys list\`.`, { field: 'kid' });
      const wasActive = key.state === 'ACTIVE';

      if (wasActive) {
        const next = (await tx.signingKey.findFirst({ where: { state: 'NEXT', revokedAt: null }, orderBy: { createdAt: 'asc' } })) ?? (await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'NEXT', createdAt: now } }));
        await tx.signingKey.update({ where: { kid: next.kid }, data: { state: 'ACTIVE', activatedAt: now } });
      }
      await tx.signingKey.update({ where: { kid }, data: { state: 'RETIRED', retiredAt: key.retiredAt ?? now, revokedAt: key.revokedAt ?? now } });
      if (key.state !== 'RETIRED') {
        await tx.signingKey.create({ data: { ...(await this.newKey()), state: 'NEXT', createdAt: now } });
      }
      const active = await tx.signingKey.findFirstOrThrow({ where: { state: 'ACTIVE' } });
      return { revokedKid: kid, activeKid: active.kid, wasActive };
    });

    await this.reload();
    await this.options.state.publish(keysChannel, 'revoked').catch((error: unknown) => {
      this.options.logger.error({ err: error, kid }, 'could not broadcast the key revocation; other instances drop the key on their next periodic reload');
    });
    return result;
  }

  /** Every key in PostgreSQL, revoked ones included, oldest first, without private material. */
  async list(): Promise<Array<{ kid: string; state: string; createdAt: Date; activatedAt: Date | null; retiredAt: Date | null; revokedAt: Date | null }>> {
    return this.options.db.signingKey.findMany({ orderBy: { createdAt: 'asc' }, select: { kid: true, state: true, createdAt: true, activatedAt: true, retiredAt: true, revokedAt: true } });
  }

  private async newKey(): Promise<{ kid: string; publicJwk: JWK; privateKeyEncrypted: Uint8Array<ArrayBuffer> }> {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const privateJwk = await exportJWK(privateKey);
    // Hex, not the thumbprint's base64url: a kid starting with "-" would read as an option to the CLI.
    const thumbprint = Buffer.from(await calculateJwkThumbprint(publicJwk), 'base64url').toString('hex');
    const kid = `${thumbprint.slice(0, 16)}-${randomUUID().slice(0, 8)}`;
    const sealed = seal(this.options.masterKey, JSON.stringify(privateJwk), sealingContext(kid));
    return {
      kid,
      publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' },
      privateKeyEncrypted: new Uint8Array(sealed),
    };
  }
}
