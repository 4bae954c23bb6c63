/**
 * Authenticator data in the WebAuthn layout that App Attest uses (WebAuthn Level 2 §6.1). It starts
 * with rpIdHash (32 bytes), flags (1 byte) and signCount (4 bytes, big-endian). When the AT flag is
 * set, aaguid (16 bytes), credentialIdLength (2 bytes, big-endian), credentialId and the credential
 * public key follow.
 */
export interface AuthenticatorData {
  rpIdHash: Buffer;
  flags: number;
  counter: number;
  attested?: { aaguid: Buffer; credentialId: Buffer };
}

const attestedCredentialDataFlag = 0x40;
const fixedLength = 37;

/** Parses authenticator data; returns undefined when it is too short for the fields it declares. */
export function parseAuthenticatorData(bytes: Uint8Array): AuthenticatorData | undefined {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < fixedLength) return undefined;

  const rpIdHash = data.subarray(0, 32);
  const flags = data.readUInt8(32);
  const counter = data.readUInt32BE(33);
  if ((flags & attestedCredentialDataFlag) === 0) return { rpIdHash, flags, counter };

  if (data.length < fixedLength + 18) return undefined;
  const aaguid = data.subarray(37, 53);
  const credentialIdLength = data.readUInt16BE(53);
  const credentialIdEnd = 55 + credentialIdLength;
  if (data.length < credentialIdEnd) return undefined;
  const credentialId = data.subarray(55, credentialIdEnd);

  return { rpIdHash, flags, counter, attested: { aaguid, credentialId } };
}
