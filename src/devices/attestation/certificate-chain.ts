import type { X509Certificate } from 'node:crypto';

export type ChainProblem = 'certificate_chain_untrusted' | 'certificate_not_valid_now';

function isIssuedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function isValidAt(certificate: X509Certificate, at: Date): boolean {
  const time = at.getTime();
  return time >= Date.parse(certificate.validFrom) && time <= Date.parse(certificate.validTo);
}

/**
 * Checks that `chain` (leaf first) leads to one of `anchors`: each certificate is signed by the next,
 * every issuer is a CA, and the last one is signed by an anchor. Then checks that every certificate,
 * the anchor included, is valid at `at`. Returns the problem found, or undefined when the chain holds.
 */
export function checkCertificateChain(chain: X509Certificate[], anchors: readonly X509Certificate[], at: Date): ChainProblem | undefined {
  const last = chain[chain.length - 1];
  if (!last) return 'certificate_chain_untrusted';

  for (let index = 0; index < chain.length - 1; index += 1) {
    const subject = chain[index] as X509Certificate;
    const issuer = chain[index + 1] as X509Certificate;
    if (!issuer.ca || !isIssuedBy(subject, issuer)) return 'certificate_chain_untrusted';
  }

  const anchor = anchors.find((candidate) => candidate.ca && isIssuedBy(last, candidate));
  if (!anchor) return 'certificate_chain_untrusted';

  if (![...chain, anchor].every((certificate) => isValidAt(certificate, at))) return 'certificate_not_valid_now';
  return undefined;
}
