/** What `login`, `refreshSession` and `stepUp` return (CONTRACT: `TokenPair`). */
export interface TokenPair {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  /** "DPoP" when the access token is bound to the device key, else "Bearer". */
  tokenType: 'DPoP' | 'Bearer';
}

export function serializePair(pair: TokenPair): string {
  return JSON.stringify({
    accessToken: pair.accessToken,
    accessTokenExpiresAt: pair.accessTokenExpiresAt.toISOString(),
    refreshToken: pair.refreshToken,
    refreshTokenExpiresAt: pair.refreshTokenExpiresAt.toISOString(),
    tokenType: pair.tokenType,
  });
}

export function deserializePair(json: string): TokenPair {
  const raw = JSON.parse(json) as Record<string, string>;
  return {
    accessToken: raw.accessToken as string,
    accessTokenExpiresAt: new Date(raw.accessTokenExpiresAt as string),
    refreshToken: raw.refreshToken as string,
    refreshTokenExpiresAt: new Date(raw.refreshTokenExpiresAt as string),
    tokenType: raw.tokenType === 'DPoP' ? 'DPoP' : 'Bearer',
  };
}
