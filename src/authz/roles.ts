import { TollgateError } from '../errors.ts';
import type { Db } from '../store/db.ts';

/**
 * Operator roles and the admin scopes each grants. A user's roles live in `users.roles` and are set
 * with `npx tollgate operators grant|revoke`. Every sign-in adds the scopes of the user's roles to
 * the session, and admin fields require them with `@requiresScopes` on top of the CRITICAL tier.
 * Taking a role away revokes the user's sessions, so no token keeps scopes its user lost.
 */

export const adminScopes = {
  /** Read any user's sessions and devices. */
  usersRead: 'admin:users:read',
  /** Revoke one session by id. */
  sessionsRevoke: 'admin:sessions:revoke',
  /** Revoke in bulk, a whole user, a device's sessions or a token family. */
  revocationsBulk: 'admin:revocations:write',
  /** Suspend and restore devices and users. */
  suspensionsWrite: 'admin:suspensions:write',
  /** Read and verify the audit trail. */
  auditRead: 'admin:audit:read',
  /** Rotate and revoke signing keys. */
  keysWrite: 'admin:keys:write',
  /** Read the effective policy of every field. */
  policyRead: 'admin:policy:read',
} as const;

export const operatorRoles = ['SECURITY_ENGINEER', 'PLATFORM_ENGINEER', 'SUPPORT'] as const;
export type OperatorRole = (typeof operatorRoles)[number];

export const roleScopes: Record<OperatorRole, readonly string[]> = {
  SECURITY_ENGINEER: [
    adminScopes.usersRead,
    adminScopes.sessionsRevoke,
    adminScopes.revocationsBulk,
    adminScopes.suspensionsWrite,
    adminScopes.auditRead,
  ],
  PLATFORM_ENGINEER: [adminScopes.keysWrite, adminScopes.policyRead],
  SUPPORT: [adminScopes.usersRead, adminScopes.sessionsRevoke],
};

export function isOperatorRole(value: string): value is OperatorRole {
  return (operatorRoles as readonly string[]).includes(value);
}

/** Returns the admin scopes of the given roles; unknown role names grant nothing. */
export function scopesForRoles(roles: readonly string[]): string[] {
  return [...new Set(roles.filter(isOperatorRole).flatMap((role) => roleScopes[role]))];
}

/**
 * Returns the scopes a new session of the user gets: `baseScopes` plus those of the user's operator
 * roles. Throws `FORBIDDEN` for a suspended account, so no sign-in path can start a session for one.
 */
export async function sessionScopesFor(db: Pick<Db, 'user'>, userId: string, baseScopes: readonly string[]): Promise<string[]> {
  const user = await db.user.findUnique({ where: { id: userId }, select: { roles: true, suspendedAt: true } });
  if (user?.suspendedAt) {
    throw new TollgateError('FORBIDDEN', 'This account is suspended: contact support to restore it.');
  }
  return [...new Set([...baseScopes, ...scopesForRoles(user?.roles ?? [])])];
}
