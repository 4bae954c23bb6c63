import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets at rest (signing keys, grace-window results) are sealed with AES-256-GCM under the master
 * key. Layout: version byte, 12-byte IV, 16-byte tag, ciphertext. The additional authenticated data
 * binds a ciphertext to its purpose, so one sealed value cannot be swapped in for another.
 */
const version = 1;
const ivLength = 12;
const tagLength = 16;

export function seal(masterKey: Buffer, plaintext: Buffer | string, associatedData: string): Buffer {
  const iv = randomBytes(ivLength);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: tagLength });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([version]), iv, cipher.getAuthTag(), body]);
}

/** Opens a value from `seal`; throws when the key, the associated data or any byte differs. */
export function open(masterKey: Buffer, sealed: Uint8Array, associatedData: string): Buffer {
  const data = Buffer.from(sealed);
  if (data.length < 1 + ivLength + tagLength || data[0] !== version) {
    throw new Error('sealed value has an unknown layout');
  }
  const iv = data.subarray(1, 1 + ivLength);
  const tag = data.subarray(1 + ivLength, 1 + ivLength + tagLength);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, iv, { authTagLength: tagLength });
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data.subarray(1 + ivLength + tagLength)), decipher.final()]);
}

export function sha256(value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

/** 256 random bits, base64url: the format of refresh tokens and other opaque secrets. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
