import { defaultTiers, tierSet, type TierSet } from '../../src/authz/tiers.ts';
import type { OperatorRole } from '../../src/authz/roles.ts';
import { login, signUp, type SignedIn } from './flows.ts';
import { sql, type TestGateway } from './harness.ts';

/**
 * The default tiers with HIGH and CRITICAL reduced to a valid token and a verified revocation check.
 * Test users sign in with a password only, on an unattested device without DPoP, so under the real
 * CRITICAL tier no test user could reach an admin field; these tiers isolate the role checks.
 */
export function adminTestTiers(): TierSet {
  return tierSet(
    defaultTiers.map((tier) => (tier.name === 'HIGH' || tier.name === 'CRITICAL' ? { name: tier.name, requiresToken: true, requireVerifiedRevocation: true } : tier)),
  );
}

/**
 * Environment for gateways under admin tests: the risk field guard assesses no tier, because a test
 * operator's first sensitive call from an untrusted device would otherwise be sent to step up.
 */
export const adminTestEnv: Record<string, string> = { TOLLGATE_RISK_ASSESSED_TIERS: 'NO_TIER_IS_ASSESSED' };

/** Signs up a user, gives it operator roles, and signs in again so the session carries their scopes. */
export async function signUpOperator(gateway: TestGateway, roles: OperatorRole[]): Promise<SignedIn> {
  const user = await signUp(gateway);
  await sql(gateway, 'UPDATE users SET roles = $1 WHERE id = $2', [roles, user.userId]);
  return login(gateway, user.email, user.password);
}
