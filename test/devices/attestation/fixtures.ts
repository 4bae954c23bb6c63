// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';

import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign, webcrypto, X509Certificate } from 'node:crypto';

import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { encode } from 'cborg';
import { CompactEncrypt, CompactSign } from 'jose';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

// ---------------------------------------------------------------------------------------------
// Play Integrity

export interface PlayIntegrityKeys {
  decryptionKey: Uint8Array;
  signingKey: KeyObject;
  verificationKey: KeyObject;
  certificateDigest: Buffer;
  /** The same keys as environment variables. */
  env: Record<string, string>;
}

export const testPackageName = 'com.example.tollgate';

export function createPlayIntegrityKeys(): PlayIntegrityKeys {
  const decryptionKey = new Uint8Array(randomBytes(32));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificateDigest = sha256(Buffer.from('test app signing certificate'));
  return {
    decryptionKey,
    signingKey: privateKey,
    verificationKey: publicKey,
    certificateDigest,
    env: {
      TOLLGATE_PLAY_INTEGRITY_PACKAGE_NAME: testPackageName,
      TOLLGATE_PLAY_INTEGRITY_DECRYPTION_KEY: Buffer.from(decryptionKey).toString('base64'),
      TOLLGATE_PLAY_INTEGRITY_VERIFICATION_KEY: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      TOLLGATE_PLAY_INTEGRITY_CERTIFICATE_DIGESTS: certificateDigest.toString('hex'),
    },
  };
}

/** Builds a verdict payload that passes every check for `challenge` at `now`. */
export function integrityPayload(challenge: string, now: Date, certificateDigest: Buffer) {
  return {
    requestDetails: { requestPackageName: testPackageName, nonce: challenge, timestampMillis: String(now.getTime()) },
    appIntegrity: {
      appRecognitionVerdict: 'PLAY_RECOGNIZED',
      packageName: testPackageName,
      certificateSha256Digest: [certificateDigest.toString('base64url')],
      versionCode: '42',
    },
    deviceIntegrity: { deviceRecognitionVerdict: ['MEETS_DEVICE_INTEGRITY'] },
    accountDetails: { appLicensingVerdict: 'LICENSED' },
  };
}

/** Signs (ES256) then encrypts (A256KW, A256GCM) a payload, as Google Play does. */
export async function integrityToken(payload: unknown, keys: { signingKey: KeyObject; decryptionKey: Uint8Array }): Promise<string> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const jws = await new CompactSign(new TextEncoder().encode(body)).setProtectedHeader({ alg: 'ES256' }).sign(keys.signingKey);
  return new CompactEncrypt(new TextEncoder().encode(jws)).setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' }).encrypt(keys.decryptionKey);
}

// ---------------------------------------------------------------------------------------------
// App Attest

export const testAppId = 'ABCDE12345.com.example.tollgate';
export const productionAaguid = Buffer.concat([Buffer.from('appattest'), Buffer.alloc(7)]);
export const developmentAaguid = Buffer.from('appattestdevelop');

const p384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;
const p256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface AppAttestPki {
  root: X509Certificate;
  rootPem: string;
  intermediate: x509.X509Certificate;
  intermediateKeys: CryptoKeyPair;
  /** A CA with the same name as the intermediate that the root never certified. */
  rogueKeys: CryptoKeyPair;
  notBefore: Date;
  notAfter: Date;
}

/** Builds a root and intermediate CA shaped like Apple's (P-384), valid for a year around `at`. */
export async function createAppAttestPki(at: Date): Promise<AppAttestPki> {
  const notBefore = new Date(at.getTime() - 180 * 24 * 3600 * 1000);
  const notAfter = new Date(at.getTime() + 180 * 24 * 3600 * 1000);
  const rootKeys = (await webcrypto.subtle.generateKey(p384, true, ['sign', 'verify'])) as CryptoKeyPair;
  const intermediateKeys = (await webcrypto.subtle.generateKey(p384, true, ['sign', 'verify'])) as CryptoKeyPair;
  const rogueKeys = (await webcrypto.subtle.generateKey(p384, true, ['sign', 'verify'])) as CryptoKeyPair;
  const caExtensions = () => [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)];

  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Test App Attestation Root CA, O=Tollgate Tests',
    notBefore,
    notAfter,
    signingAlgorithm: p384,
    keys: rootKeys,
    extensions: caExtensions(),
  });
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=Test App Attestation CA 1, O=Tollgate Tests',
    issuer: root.subject,
    notBefore,
    notAfter,
    signingAlgorithm: p384,
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: caExtensions(),
  });

  const rootPem = root.toString('pem');
  return { root: new X509Certificate(rootPem), rootPem, intermediate, intermediateKeys, rogueKeys, notBefore, notAfter };
}

/** DER of the App Attest nonce extension: SEQUENCE { [1] EXPLICIT OCTET STRING nonce }. */
export function nonceExtensionValue(nonce: Uint8Array): ArrayBuffer {
  const tagged = new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: [new asn1js.OctetString({ valueHex: nonce })] });
  return new asn1js.Sequence({ value: [tagged] }).toBER();
}

export interface AttestationOptions {
  challenge: string;
  appId?: string;
  counter?: number;
  aaguid?: Buffer;
  fmt?: string;
  /** Replaces the certified nonce. */
  nonce?: Buffer;
  omitNonceExtension?: boolean;
  /** Replaces the credential id in the authenticator data (default: the key id). */
  credentialId?: Buffer;
  leafNotBefore?: Date;
  leafNotAfter?: Date;
  /** Sign the credential certificate with a CA the root never certified. */
  rogueIssuer?: boolean;
}

export interface BuiltAttestation {
  /** The attestation object, base64. */
  attestation: string;
  /** SHA-256 of the credential public key, base64. */
  keyId: string;
  leafPrivateKey: KeyObject;
  publicKeySpki: Buffer;
}

export function authenticatorData(options: { appId: string; counter: number; flags?: number; attested?: { aaguid: Buffer; credentialId: Buffer } }): Buffer {
  const header = Buffer.alloc(37);
  sha256(Buffer.from(options.appId)).copy(header, 0);
  header.writeUInt8(options.flags ?? (options.attested ? 0x40 : 0x00), 32);
  header.writeUInt32BE(options.counter, 33);
  if (!options.attested) return header;

  const length = Buffer.alloc(2);
  length.writeUInt16BE(options.attested.credentialId.length);
  // A stand-in for the COSE key that follows; verifiers read the key from the certificate.
  const coseKey = Buffer.from(encode({ 1: 2, 3: -7 }));
  return Buffer.concat([header, options.attested.aaguid, length, options.attested.credentialId, coseKey]);
}

/** Builds an App Attest attestation object for `options.challenge`, signed through `pki`. */
export async function buildAttestation(pki: AppAttestPki, options: AttestationOptions): Promise<BuiltAttestation> {
  const leafKeys = (await webcrypto.subtle.generateKey(p256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKeySpki = Buffer.from(await webcrypto.subtle.exportKey('spki', leafKeys.publicKey));
  const rawPoint = Buffer.from(await webcrypto.subtle.exportKey('raw', leafKeys.publicKey));
  const keyId = sha256(rawPoint);

  const authData = authenticatorData({
    appId: options.appId ?? testAppId,
    counter: options.counter ?? 0,
    attested: { aaguid: options.aaguid ?? productionAaguid, credentialId: options.credentialId ?? keyId },
  });
  const nonce = options.nonce ?? sha256(authData, sha256(Buffer.from(options.challenge, 'utf8')));
  const extensions = options.omitNonceExtension ? [] : [new x509.Extension('1.2.840.113635.100.8.2', false, nonceExtensionValue(nonce))];

  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: `CN=${keyId.toString('hex')}, O=Tollgate Tests`,
    issuer: pki.intermediate.subject,
    notBefore: options.leafNotBefore ?? pki.notBefore,
    notAfter: options.leafNotAfter ?? pki.notAfter,
    signingAlgorithm: p384,
    publicKey: leafKeys.publicKey,
    signingKey: options.rogueIssuer ? pki.rogueKeys.privateKey : pki.intermediateKeys.privateKey,
    extensions,
  });

  const object = {
    fmt: options.fmt ?? 'apple-appattest',
    attStmt: { x5c: [new Uint8Array(leaf.rawData), new Uint8Array(pki.intermediate.rawData)], receipt: new Uint8Array(randomBytes(16)) },
    authData: new Uint8Array(authData),
  };
  return {
    attestation: Buffer.from(encode(object)).toString('base64'),
    keyId: keyId.toString('base64'),
    leafPrivateKey: KeyObject.from(leafKeys.privateKey),
    publicKeySpki,
  };
}

/** Builds an App Attest assertion: the private key signs SHA-256(authenticatorData || SHA-256(clientData)). */
export function buildAssertion(privateKey: KeyObject, options: { clientData: Uint8Array; counter: number; appId?: string; signature?: Buffer }): string {
  const authData = authenticatorData({ appId: options.appId ?? testAppId, counter: options.counter, flags: 0x01 });
  const nonce = sha256(authData, sha256(options.clientData));
  const signature = options.signature ?? sign('sha256', nonce, privateKey);
  return Buffer.from(encode({ signature: new Uint8Array(signature), authenticatorData: new Uint8Array(authData) })).toString('base64');
}
