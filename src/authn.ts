import { principalFromClaims, type Principal } from './authz/principal.ts';
import { authenticateKeyBound, type KeyBoundDeps } from './devices/authenticate.ts';
import type { HttpRequestFacts } from './devices/dpop.ts';
import { TollgateError } from './errors.ts';
import { riskLevelFrom, sessionRiskKey } from './risk/index.ts';
import type { RevocationView } from './sessions/revocation.ts';
import type { AccessTokenService } from './tokens/access.ts';

export interface Authenticator {
  /**
   * Returns the principal of the request's access token, null without one; throws for a bad one. A
   * key-bound token also needs `http`, the request its DPoP proof must match.
   */
  authenticate(headers: { authorization?: string | undefined; http?: HttpRequestFacts | undefined }): Promise<Principal | null>;
}

/** RFC 6750 §2.1: `Bearer` followed by one space and the token; the scheme is case-insensitive. */
const authorizationPattern = /^(Bearer|DPoP)\s+([A-Za-z0-9\-._~+/]+=*)$/i;

export function createAuthenticator(deps: { access: AccessTokenService; revocation: RevocationView } & KeyBoundDeps): Authenticator {
  return {
    async authenticate(headers) {
      const header = headers.authorization;
      if (header === undefined || header.trim() === '') return null;

      const match = authorizationPattern.exec(header.trim());
      if (!match) throw new TollgateError('TOKEN_INVALID', 'The Authorization header is malformed: expected "Bearer <access token>".');
      const token = match[2] as string;

      const claims = await deps.access.verify(token);
      const jkt = claims.cnf?.jkt;
      if (jkt) return authenticateKeyBound(deps, { token, claims: { ...claims, cnf: { jkt } }, scheme: match[1] as string, http: headers.http });

      const revocation = await deps.revocation.check({ sessionId: claims.sid, deviceId: claims.did, userId: claims.sub, issuedAt: claims.iat }, [sessionRiskKey(claims.sid)]);
      if (revocation.revoked) throw new TollgateError('TOKEN_REVOKED');

      // The tier rules decide which fields an unverified revocation check may still serve.
      return principalFromClaims(claims, { revocation: revocation.freshness, riskLevel: riskLevelFrom(revocation.extra?.[0]) });
    },
  };
}
