import { z } from 'zod';

import type { StoredTokens } from './storage.ts';
import type { GraphQLBody } from './transport.ts';

const tokenPairFields = 'accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt tokenType';
const authResultFields = `__typename
  ... on AuthSuccess { tokens { ${tokenPairFields} } session { id } user { id } }
  ... on StepUpChallenge { challengeId methods reasons expiresAt }`;

/** The client's own operations. Their names let proxies and the fleet simulator recognise them. */
export const documents = {
  refreshSession: `mutation TollgateRefreshSession($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { ${tokenPairFields} } }`,
  stepUp: `mutation TollgateStepUp($input: StepUpInput!) { stepUp(input: $input) { ${tokenPairFields} } }`,
  signUp: `mutation TollgateSignUp($input: SignUpInput!) { signUp(input: $input) { ${authResultFields} } }`,
  login: `mutation TollgateLogin($input: LoginInput!) { login(input: $input) { ${authResultFields} } }`,
  completeLogin: `mutation TollgateCompleteLogin($input: CompleteLoginInput!) { completeLogin(input: $input) { ${authResultFields} } }`,
  logout: 'mutation TollgateLogout { logout }',
} as const;

export type OperationName = keyof typeof documents;

export function operationBody(name: OperationName, variables: Record<string, unknown> = {}): string {
  const operationName = `Tollgate${name[0]?.toUpperCase()}${name.slice(1)}`;
  return JSON.stringify({ query: documents[name], operationName, variables });
}

const dateTime = z.iso.datetime({ offset: true }).transform((value) => Date.parse(value));

const tokenPairSchema = z.object({
  accessToken: z.string().min(1),
  accessTokenExpiresAt: dateTime,
  refreshToken: z.string().min(1),
  refreshTokenExpiresAt: dateTime,
  tokenType: z.enum(['Bearer', 'DPoP']),
});

const authResultSchema = z.discriminatedUnion('__typename', [
  z.object({ __typename: z.literal('AuthSuccess'), tokens: tokenPairSchema, session: z.object({ id: z.string() }), user: z.object({ id: z.string() }) }),
  z.object({
    __typename: z.literal('StepUpChallenge'),
    challengeId: z.string(),
    methods: z.array(z.string()),
    reasons: z.array(z.string()),
    expiresAt: dateTime,
  }),
]);

export type TokenPairData = z.infer<typeof tokenPairSchema>;
export type AuthResultData = z.infer<typeof authResultSchema>;

/** Reads the token pair of a `refreshSession` or `stepUp` response; returns undefined when it has none. */
export function tokenPairFrom(body: GraphQLBody | undefined, field: 'refreshSession' | 'stepUp'): TokenPairData | undefined {
  const parsed = tokenPairSchema.safeParse(body?.data?.[field]);
  return parsed.success ? parsed.data : undefined;
}

export function authResultFrom(body: GraphQLBody | undefined, field: 'signUp' | 'login' | 'completeLogin'): AuthResultData | undefined {
  const parsed = authResultSchema.safeParse(body?.data?.[field]);
  return parsed.success ? parsed.data : undefined;
}

export function storedTokensOf(pair: TokenPairData, receivedAt: number, clockOffsetMs: number): StoredTokens {
  return {
    accessToken: pair.accessToken,
    accessTokenExpiresAt: pair.accessTokenExpiresAt,
    refreshToken: pair.refreshToken,
    refreshTokenExpiresAt: pair.refreshTokenExpiresAt,
    tokenType: pair.tokenType,
    receivedAt,
    clockOffsetMs,
  };
}

/**
 * Returns whether a request body contains a mutation. After a network failure it is unknown whether
 * the server ran a mutation, so only other operations are retried. A body that cannot be read counts
 * as a mutation, the safe side.
 */
export function containsMutation(body: string | undefined): boolean {
  if (body === undefined || body.length === 0) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return true;
  }
  const operations = Array.isArray(parsed) ? parsed : [parsed];
  return operations.some((operation) => {
    const query = (operation as { query?: unknown } | null)?.query;
    if (typeof query !== 'string') return (operation as { extensions?: unknown } | null)?.extensions !== undefined;
    return /(^|[\s{}])mutation\b/.test(query.replace(/#[^\n\r]*/g, ''));
  });
}
