import { isIP } from 'node:net';

import semver from 'semver';
import { z } from 'zod';

import { Prisma, type Db } from '../store/db.ts';

/**
 * Criteria that select sessions for bulk revocation. Every criterion given must match (AND); a list
 * matches any of its values (OR). At least one criterion is required, so an empty request can never
 * revoke every session.
 */

const ids = (what: string) => z.array(z.uuid({ message: `each value must be a ${what} id` })).min(1).max(10_000);

/** An IPv4 or IPv6 address, or a network in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`). */
const networkSchema = z.string().refine(isNetwork, { message: 'must be an IP address or a CIDR network such as 203.0.113.0/24' });

export const revocationCriteriaSchema = z
  .object({
    userIds: ids('user').optional(),
    deviceIds: ids('device').optional(),
    sessionIds: ids('session').optional(),
    platforms: z.array(z.enum(['IOS', 'ANDROID', 'WEB', 'OTHER'])).min(1).optional(),
    /** A semver range such as `<2.3.0` or `>=2.0.0 <2.3.0`, matched against the device's app version. */
    appVersion: z.string().min(1).max(200).refine((range) => semver.validRange(range) !== null, { message: 'must be a semver range such as <2.3.0' }).optional(),
    createdBefore: z.coerce.date().optional(),
    createdAfter: z.coerce.date().optional(),
    lastSeenNetwork: networkSchema.optional(),
    /** MISSING: the device never sent an attestation. FAILED: its last attestation failed. */
    attestation: z.array(z.enum(['MISSING', 'FAILED'])).min(1).optional(),
    riskLevels: z.array(z.enum(['LOW', 'MEDIUM', 'HIGH'])).min(1).optional(),
  })
  .strict()
  .refine((criteria) => Object.values(criteria).some((value) => value !== undefined), { message: 'give at least one criterion' });

export type RevocationCriteria = z.infer<typeof revocationCriteriaSchema>;

function isNetwork(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * Returns the app versions stored on devices that satisfy the semver range. Versions that are not
 * valid semver are coerced (`2.3` becomes `2.3.0`); a version that cannot be coerced never matches.
 */
export async function matchingAppVersions(db: Db, range: string): Promise<string[]> {
  const rows = await db.$queryRaw<Array<{ version: string }>>`SELECT DISTINCT app_version AS version FROM devices WHERE app_version IS NOT NULL`;
  return rows
    .map((row) => row.version)
    .filter((version) => {
      const parsed = semver.valid(version) ?? semver.coerce(version)?.version;
      return parsed !== undefined && parsed !== null && semver.satisfies(parsed, range);
    });
}

/**
 * Builds the SQL condition over `sessions s JOIN devices d` for active sessions matching the
 * criteria. `appVersions` is the result of `matchingAppVersions` when the criteria name a range.
 * Sessions whose idle lifetime ended more than `retentionSeconds` ago are skipped: no access token
 * of theirs can still be valid.
 */
export function criteriaCondition(criteria: RevocationCriteria, appVersions: string[] | undefined, now: Date, retentionSeconds: number): Prisma.Sql {
  const since = new Date(now.getTime() - retentionSeconds * 1000);
  const conditions: Prisma.Sql[] = [Prisma.sql`s.revoked_at IS NULL`, Prisma.sql`s.idle_expires_at > ${since}`];

  if (criteria.userIds) conditions.push(Prisma.sql`s.user_id = ANY(${criteria.userIds}::uuid[])`);
  if (criteria.deviceIds) conditions.push(Prisma.sql`s.device_id = ANY(${criteria.deviceIds}::uuid[])`);
  if (criteria.sessionIds) conditions.push(Prisma.sql`s.id = ANY(${criteria.sessionIds}::uuid[])`);
  if (criteria.platforms) conditions.push(Prisma.sql`d.platform::text = ANY(${criteria.platforms}::text[])`);
  if (appVersions) conditions.push(Prisma.sql`d.app_version = ANY(${appVersions}::text[])`);
  if (criteria.createdBefore) conditions.push(Prisma.sql`s.created_at < ${criteria.createdBefore}`);
  if (criteria.createdAfter) conditions.push(Prisma.sql`s.created_at >= ${criteria.createdAfter}`);
  if (criteria.lastSeenNetwork) {
    // The regular expression keeps the cast from failing on a malformed stored address.
    conditions.push(Prisma.sql`(s.last_ip ~ '^[0-9A-Fa-f:.]+$' AND s.last_ip::inet <<= ${criteria.lastSeenNetwork}::inet)`);
  }
  if (criteria.attestation) {
    const alternatives: Prisma.Sql[] = [];
    if (criteria.attestation.includes('MISSING')) alternatives.push(Prisma.sql`d.attestation_status IS NULL`);
    if (criteria.attestation.includes('FAILED')) alternatives.push(Prisma.sql`upper(d.attestation_status) = 'FAILED'`);
    conditions.push(Prisma.sql`(${Prisma.join(alternatives, ' OR ')})`);
  }
  if (criteria.riskLevels) conditions.push(Prisma.sql`s.risk_level = ANY(${criteria.riskLevels}::text[])`);

  return Prisma.join(conditions, ' AND ');
}
