import * as asn1js from 'asn1js';

/** The App Attest nonce extension of the credential certificate. */
export const appAttestNonceOid = '1.2.840.113635.100.8.2';

const contextClass = 3;

function parseExactly(bytes: Uint8Array): asn1js.AsnType | undefined {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1 || parsed.offset !== bytes.byteLength) return undefined;
  return parsed.result;
}

function childrenOf(block: asn1js.AsnType | undefined): asn1js.AsnType[] | undefined {
  if (!(block instanceof asn1js.Constructed)) return undefined;
  return block.valueBlock.value;
}

function isContextTag(block: asn1js.AsnType, tagNumber: number): boolean {
  return block.idBlock.tagClass === contextClass && block.idBlock.tagNumber === tagNumber;
}

/**
 * Returns the DER content of a certificate extension (the bytes inside `extnValue`), or undefined
 * when the certificate has no such extension or cannot be parsed. RFC 5280 §4.1: extensions are the
 * `[3]` explicitly tagged member of tbsCertificate.
 */
export function certificateExtension(certificateDer: Uint8Array, oid: string): Uint8Array | undefined {
  const certificate = childrenOf(parseExactly(certificateDer));
  const tbsCertificate = childrenOf(certificate?.[0]);
  const tagged = tbsCertificate?.find((member) => isContextTag(member, 3));
  const extensions = childrenOf(childrenOf(tagged)?.[0]);

  for (const extension of extensions ?? []) {
    const members = childrenOf(extension);
    const extnId = members?.[0];
    const extnValue = members?.[members.length - 1];
    if (!(extnId instanceof asn1js.ObjectIdentifier) || extnId.valueBlock.toString() !== oid) continue;
    if (!(extnValue instanceof asn1js.OctetString)) return undefined;
    return new Uint8Array(extnValue.getValue());
  }
  return undefined;
}

/**
 * Reads the nonce from the App Attest extension's content: a SEQUENCE holding one `[1]` explicitly
 * tagged OCTET STRING. Returns undefined for any other shape.
 */
export function appAttestNonce(extensionDer: Uint8Array): Uint8Array | undefined {
  const sequence = parseExactly(extensionDer);
  if (!(sequence instanceof asn1js.Sequence)) return undefined;

  const tagged = sequence.valueBlock.value.find((member) => isContextTag(member, 1));
  const octets = childrenOf(tagged)?.[0];
  if (!(octets instanceof asn1js.OctetString)) return undefined;
  return new Uint8Array(octets.getValue());
}
