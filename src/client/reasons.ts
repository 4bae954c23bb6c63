/**
 * Sign-out reasons, each with the error code it comes from. The strings are stable, so an app can map
 * them to its own messages; docs/api.md ("Client library") lists them.
 */
export const signOutReasons = {
  /** REFRESH_TOKEN_REUSED: a rotated refresh token came back, so the session was revoked as stolen. */
  refresh_token_reused: 'REFRESH_TOKEN_REUSED',
  /** SESSION_REVOKED: logout elsewhere, an administrator, a password change or a risk decision. */
  session_revoked: 'SESSION_REVOKED',
  /** SESSION_EXPIRED: the idle or absolute session lifetime passed. */
  session_expired: 'SESSION_EXPIRED',
  /** REFRESH_TOKEN_INVALID: the server does not know the refresh token, or it expired. */
  refresh_token_invalid: 'REFRESH_TOKEN_INVALID',
  /** DEVICE_MISMATCH: the device key no longer matches the session's, as after a reinstall. */
  device_mismatch: 'DEVICE_MISMATCH',
  /** `signOut()` was called, in this process or another one sharing the store. */
  signed_out: undefined,
} as const;

export type SignOutReason = keyof typeof signOutReasons;

/** Error codes from `refreshSession` that end the session. */
export const signOutReasonByCode: Record<string, SignOutReason> = {
  REFRESH_TOKEN_REUSED: 'refresh_token_reused',
  SESSION_REVOKED: 'session_revoked',
  SESSION_EXPIRED: 'session_expired',
  REFRESH_TOKEN_INVALID: 'refresh_token_invalid',
  DEVICE_MISMATCH: 'device_mismatch',
};

export type RetryCause = 'network' | 'timeout' | 'service_unavailable' | 'rate_limited' | 'dpop_proof_rejected';

/** Events the client reports to the app through `onEvent`. */
export type ClientEvent =
  | { type: 'signed_out'; reason: SignOutReason }
  /** DEVICE_SUSPENDED: token issuance to this device awaits verification; the tokens are kept. */
  | { type: 'device_review'; reason: 'device_suspended' }
  | { type: 'tokens_refreshed'; accessTokenExpiresAt: number }
  | { type: 'step_up'; outcome: 'completed' | 'cancelled' | 'failed' }
  | { type: 'retry'; operation: 'refresh' | 'request'; cause: RetryCause; attempt: number; delayMs: number };

/**
 * Thrown by the client's own operations (sign-in, refresh) for outcomes a caller handles in code.
 * `reason` is `device_mismatch` when the stored device key is gone, or `device_suspended`, `network`,
 * `unexpected_response` or `request_failed`.
 */
export class TollgateClientError extends Error {
  constructor(
    readonly reason: 'device_mismatch' | 'device_suspended' | 'network' | 'unexpected_response' | 'request_failed',
    message: string,
    /** The server's `extensions.code`, when its response carried one. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TollgateClientError';
  }
}
