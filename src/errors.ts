import { GraphQLError } from 'graphql';

/**
 * The error registry: every code a client can act on, its HTTP status when it refuses the whole
 * operation, and the default message. Modules throw `TollgateError`, never a bare `Error`, for
 * anything a client can act on.
 */
export const errorRegistry = {
  UNAUTHENTICATED: { status: 401, message: 'Authentication is required: send an access token in the Authorization header.' },
  TOKEN_INVALID: { status: 401, message: 'The access token is invalid.' },
  TOKEN_EXPIRED: { status: 401, message: 'The access token has expired: refresh the session.' },
  TOKEN_REVOKED: { status: 401, message: 'The access token was revoked: sign in again.' },
  DPOP_PROOF_INVALID: { status: 401, message: 'The DPoP proof is invalid.' },
  INSUFFICIENT_SCOPE: { status: 403, message: 'The access token lacks a scope this field requires.' },
  STEP_UP_REQUIRED: { status: 401, message: 'This field needs a more recent or stronger authentication: call stepUp.' },
  DEVICE_TRUST_REQUIRED: { status: 403, message: 'This field needs a more trusted device.' },
  FORBIDDEN: { status: 403, message: 'Access to this field is forbidden.' },
  INVALID_CREDENTIALS: { status: 401, message: 'The email or password is incorrect.' },
  REFRESH_TOKEN_INVALID: { status: 401, message: 'The refresh token is invalid or expired: sign in again.' },
  REFRESH_TOKEN_REUSED: { status: 401, message: 'The refresh token was already used: the session has been revoked, sign in again.' },
  SESSION_EXPIRED: { status: 401, message: 'The session has expired: sign in again.' },
  SESSION_REVOKED: { status: 401, message: 'The session was revoked: sign in again.' },
  DEVICE_MISMATCH: { status: 401, message: "The proof key does not match the session's device key." },
  DEVICE_SUSPENDED: { status: 403, message: 'Token issuance to this device is suspended pending verification.' },
  RISK_DENIED: { status: 403, message: 'The request was denied because its risk is too high.' },
  RATE_LIMITED: { status: 429, message: 'Too many attempts: retry later.' },
  BAD_USER_INPUT: { status: 400, message: 'The input is invalid.' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'A dependency is unavailable: retry later.' },
  INTERNAL_SERVER_ERROR: { status: 500, message: 'Internal server error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorRegistry;

/** Codes whose refusal of the whole operation carries an RFC 6750 `WWW-Authenticate` challenge. */
const invalidTokenCodes = new Set<ErrorCode>(['TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_REVOKED', 'DPOP_PROOF_INVALID']);

export interface ErrorExtensions {
  [key: string]: unknown;
}

/** A client-actionable error: a stable `code` in `extensions`, plus code-specific extensions. */
export class TollgateError extends GraphQLError {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, extensions: ErrorExtensions = {}) {
    super(message ?? errorRegistry[code].message, { extensions: { ...extensions, code } });
    this.name = 'TollgateError';
    this.code = code;
    this.status = errorRegistry[code].status;
  }
}

export function isTollgateError(error: unknown): error is TollgateError {
  return error instanceof TollgateError;
}

/** Returns the code carried by a GraphQL error, whether thrown by Tollgate or re-created by graphql-js. */
export function codeOf(error: { extensions?: Record<string, unknown> } | undefined): ErrorCode | undefined {
  const code = error?.extensions?.code;
  return typeof code === 'string' && code in errorRegistry ? (code as ErrorCode) : undefined;
}

export function httpStatusOf(code: ErrorCode): number {
  return errorRegistry[code].status;
}

const realm = 'tollgate';

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

/**
 * Builds the `WWW-Authenticate` header for a refused operation (RFC 6750 §3, RFC 9470 §3), or
 * undefined when the code has no challenge.
 */
export function wwwAuthenticateFor(code: ErrorCode, extensions: ErrorExtensions = {}, scheme: 'Bearer' | 'DPoP' = 'Bearer'): string | undefined {
  if (code === 'UNAUTHENTICATED') {
    return `${scheme} realm=${quoted(realm)}`;
  }
  if (invalidTokenCodes.has(code)) {
    // RFC 9449 §7.1 and §8: a rejected DPoP proof gets a DPoP challenge naming the accepted
    // algorithms. A missing or outdated server nonce has its own error code.
    const dpop = code === 'DPOP_PROOF_INVALID' || scheme === 'DPoP';
    let error = 'invalid_token';
    if (code === 'DPOP_PROOF_INVALID') error = extensions.reason === 'nonce_required' ? 'use_dpop_nonce' : 'invalid_dpop_proof';
    const challenge = `${dpop ? 'DPoP' : scheme} realm=${quoted(realm)}, error=${quoted(error)}, error_description=${quoted(errorRegistry[code].message)}`;
    return dpop ? `${challenge}, algs=${quoted('ES256')}` : challenge;
  }
  if (code === 'STEP_UP_REQUIRED') {
    const acrValues = Array.isArray(extensions.acrValues) ? extensions.acrValues.join(' ') : undefined;
    // RFC 9470 §3 auth-params only: the message stays in the body, so clients can match the header exactly.
    const parts = [`${scheme} realm=${quoted(realm)}`, `error=${quoted('insufficient_user_authentication')}`];
    if (acrValues) parts.push(`acr_values=${quoted(acrValues)}`);
    if (typeof extensions.maxAge === 'number') parts.push(`max_age=${extensions.maxAge}`);
    return parts.join(', ');
  }
  if (code === 'INSUFFICIENT_SCOPE') {
    // RFC 6750 §3.1: a request that needs more scope gets 403 with this challenge.
    const alternatives = Array.isArray(extensions.requiredScopes) ? (extensions.requiredScopes as string[][]) : [];
    const scope = alternatives[0]?.join(' ');
    const parts = [`${scheme} realm=${quoted(realm)}`, `error=${quoted('insufficient_scope')}`];
    if (scope) parts.push(`scope=${quoted(scope)}`);
    return parts.join(', ');
  }
  // RFC 9110 §15.5.2: every 401 carries a challenge.
  if (errorRegistry[code].status === 401) return `${scheme} realm=${quoted(realm)}`;
  return undefined;
}
