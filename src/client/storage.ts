/**
 * Storage of a session between launches. Apps implement `TokenStorage` over their platform's secure
 * storage: the iOS Keychain with an access group shared with the app's extensions, or Android
 * Keystore-backed storage. `MemoryTokenStorage` serves tests and the fleet simulator.
 */

/** The session as the client stores it. Times are epoch milliseconds on the server's clock. */
export interface StoredTokens {
  accessToken: string;
  accessTokenExpiresAt: number;
  refreshToken: string;
  refreshTokenExpiresAt: number;
  /** "DPoP" when the access token is bound to the device key, else "Bearer". */
  tokenType: 'Bearer' | 'DPoP';
  /** Server time when the pair was received, so a restarted app can place its refresh in the lifetime. */
  receivedAt: number;
  /** Last measured server clock minus device clock, in milliseconds. */
  clockOffsetMs: number;
}

/**
 * The record that lets two processes sharing one store (an app and its extension) take turns with
 * the refresh token. Times are on the device clock, which both processes share.
 */
export interface RefreshLease {
  /** Name of the process kind holding the lease, such as "app" or "share-extension". */
  process: string;
  /** Unique per launch, so a relaunched process recognises a lease left by its previous launch. */
  launchId: string;
  expiresAt: number;
}

/** Value type of each storage slot. */
export interface StorageValues {
  tokens: StoredTokens;
  refreshLease: RefreshLease;
  /**
   * The device key pair. The private key is a non-extractable `CryptoKey`, so the object itself is
   * stored: real apps keep it in the Secure Enclave or Android Keystore and store a handle to it.
   */
  deviceKey: CryptoKeyPair;
}

export type StorageKey = keyof StorageValues;

export interface Versioned<T> {
  value: T;
  /** Opaque; changes on every write of the slot. */
  version: string;
}

export interface CompareAndSetResult {
  written: boolean;
  /** The slot's version after the call: the new one when written, else the one that won; null when empty. */
  version: string | null;
}

/**
 * Secure storage with compare-and-set per slot. Every write names the version it replaces, so two
 * processes can never overwrite each other's refresh token unnoticed.
 */
export interface TokenStorage {
  read<K extends StorageKey>(key: K): Promise<Versioned<StorageValues[K]> | null>;
  /**
   * Atomically writes `value` (or deletes the slot when `value` is null) if the slot's current
   * version is `expectedVersion`, where null means the slot must be empty.
   */
  compareAndSet<K extends StorageKey>(key: K, expectedVersion: string | null, value: StorageValues[K] | null): Promise<CompareAndSetResult>;
}

/** Keeps every slot in memory; several clients given the same instance share it like two processes. */
export class MemoryTokenStorage implements TokenStorage {
  private readonly slots = new Map<StorageKey, Versioned<unknown>>();
  private writes = 0;

  async read<K extends StorageKey>(key: K): Promise<Versioned<StorageValues[K]> | null> {
    const slot = this.slots.get(key) as Versioned<StorageValues[K]> | undefined;
    return slot ? { value: copyOf(slot.value), version: slot.version } : null;
  }

  async compareAndSet<K extends StorageKey>(key: K, expectedVersion: string | null, value: StorageValues[K] | null): Promise<CompareAndSetResult> {
    const current = this.slots.get(key)?.version ?? null;
    if (current !== expectedVersion) return { written: false, version: current };

    if (value === null) {
      this.slots.delete(key);
      return { written: true, version: null };
    }
    this.writes += 1;
    const version = String(this.writes);
    this.slots.set(key, { value: copyOf(value), version });
    return { written: true, version };
  }
}

/** Copies plain records so a caller never mutates the stored one; key pairs are shared handles. */
function copyOf<T>(value: T): T {
  if (value !== null && typeof value === 'object' && 'privateKey' in value) return value;
  return { ...value };
}

/** Reads a slot and writes it whatever its version, retrying when another writer interleaves. */
export async function overwrite<K extends StorageKey>(storage: TokenStorage, key: K, value: StorageValues[K] | null): Promise<string | null> {
  for (;;) {
    const current = await storage.read(key);
    const result = await storage.compareAndSet(key, current?.version ?? null, value);
    if (result.written) return result.version;
  }
}
