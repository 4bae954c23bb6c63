import { z } from 'zod';

import { auditFilterSchema, queryAuditEvents, verifyAuditChain, type AuditEventRow } from '../audit/index.ts';
import type { RequestContext } from '../context.ts';
import { TollgateError } from '../errors.ts';
import type { RevocationJobState } from '../sessions/bulk.ts';
import type { RevocationRequest } from '../sessions/revoker.ts';
import { parseInput } from './input.ts';

/**
 * Operator administration. Authorization is declared in schema.graphql: the CRITICAL tier plus the
 * role's admin scope. These resolvers validate input, record the operator as the actor, and call the
 * revocation, audit and key services.
 */

const idSchema = (what: string) => z.uuid({ message: `must be a ${what} id` });
const reasonSchema = z.string().trim().min(1, 'give a reason; it is recorded in the audit trail').max(200);

function operatorRequest(context: RequestContext, reason: string): RevocationRequest {
  const principal = context.auth.principal;
  if (!principal) throw new TollgateError('UNAUTHENTICATED');
  return { reason, actor: `operator:${principal.userId}`, ip: context.facts.ip };
}

function jobValue(job: RevocationJobState) {
  return { ...job };
}

const Query = {
  async adminUserSessions(_parent: unknown, args: { userId: string; includeInactive?: boolean | null }, context: RequestContext) {
    const userId = parseInput(idSchema('user'), args.userId, 'userId');
    const now = context.clock.now();
    return context.services.database.prisma.session.findMany({
      where: { userId, ...(args.includeInactive ? {} : { revokedAt: null, idleExpiresAt: { gt: now } }) },
      orderBy: { createdAt: 'desc' },
      take: 500,
    });
  },

  async adminUserDevices(_parent: unknown, args: { userId: string }, context: RequestContext) {
    const userId = parseInput(idSchema('user'), args.userId, 'userId');
    return context.services.database.prisma.device.findMany({ where: { userId }, orderBy: { lastSeenAt: 'desc' }, take: 500 });
  },

  async adminAuditEvents(_parent: unknown, args: { filter?: unknown; first?: number | null; after?: string | null }, context: RequestContext) {
    const filter = parseInput(auditFilterSchema, args.filter ?? {}, 'filter');
    // Events appear once the chainer has linked them; link what is committed before reading.
    await context.services.auditChainer.chainAll();
    return queryAuditEvents(context.services.database.prisma, filter, { first: args.first, after: args.after });
  },

  async adminVerifyAudit(_parent: unknown, _args: unknown, context: RequestContext) {
    await context.services.auditChainer.chainAll();
    const result = await verifyAuditChain(context.services.database.prisma);
    return {
      ok: result.ok,
      checked: result.checked,
      headSeq: result.head?.seq.toString() ?? null,
      headHash: result.head?.hash ?? null,
      firstBrokenSeq: result.firstBreak?.seq?.toString() ?? null,
      reason: result.firstBreak?.reason ?? null,
      message: result.firstBreak?.message ?? null,
    };
  },

  async adminRevocationJob(_parent: unknown, args: { id: string }, context: RequestContext) {
    const id = parseInput(idSchema('revocation job'), args.id, 'id');
    const job = await context.services.bulkRevocations.get(id);
    return job ? jobValue(job) : null;
  },
};

const Mutation = {
  async adminRevokeSession(_parent: unknown, args: { id: string; reason: string }, context: RequestContext) {
    const id = parseInput(idSchema('session'), args.id, 'id');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    return (await context.services.revocations.revokeSessions([id], request)).sessionIds.length;
  },

  async adminRevokeSessions(_parent: unknown, args: { criteria: unknown; reason: string; dryRun?: boolean | null }, context: RequestContext) {
    const bulk = context.services.bulkRevocations;
    const criteria = bulk.parseCriteria(args.criteria);
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    if (args.dryRun !== false) return { dryRun: true, matched: await bulk.count(criteria), job: null };

    const job = await bulk.create(criteria, request);
    // The job runs on after the response; its progress is read with adminRevocationJob, and an
    // interrupted job is resumed with adminResumeRevocationJob or `npx tollgate sessions resume`.
    bulk.run(job.id).catch((error: unknown) => context.services.logger.error({ err: error, jobId: job.id }, 'bulk revocation job stopped'));
    return { dryRun: false, matched: job.total, job: jobValue(job) };
  },

  async adminResumeRevocationJob(_parent: unknown, args: { id: string }, context: RequestContext) {
    const id = parseInput(idSchema('revocation job'), args.id, 'id');
    const job = await context.services.bulkRevocations.get(id);
    if (!job) throw new TollgateError('BAD_USER_INPUT', `id: no revocation job ${id}.`, { field: 'id' });
    context.services.bulkRevocations.run(id).catch((error: unknown) => context.services.logger.error({ err: error, jobId: id }, 'bulk revocation job stopped'));
    return jobValue(job);
  },

  async adminRevokeUser(_parent: unknown, args: { userId: string; reason: string }, context: RequestContext) {
    const userId = parseInput(idSchema('user'), args.userId, 'userId');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    return (await context.services.revocations.revokeUser(userId, request)).sessionIds.length;
  },

  async adminRevokeTokenFamily(_parent: unknown, args: { refreshTokenId: string; reason: string }, context: RequestContext) {
    const refreshTokenId = parseInput(idSchema('refresh token'), args.refreshTokenId, 'refreshTokenId');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    return (await context.services.revocations.revokeTokenFamily(refreshTokenId, request)).sessionIds.length;
  },

  async adminSuspendDevice(_parent: unknown, args: { id: string; reason: string }, context: RequestContext) {
    const id = parseInput(idSchema('device'), args.id, 'id');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    return (await context.services.revocations.suspendDevice(id, request)).sessionIds.length;
  },

  async adminRestoreDevice(_parent: unknown, args: { id: string; reason: string }, context: RequestContext) {
    const id = parseInput(idSchema('device'), args.id, 'id');
    await context.services.revocations.restoreDevice(id, operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason')));
    return true;
  },

  async adminSuspendUser(_parent: unknown, args: { userId: string; reason: string }, context: RequestContext) {
    const userId = parseInput(idSchema('user'), args.userId, 'userId');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason'));
    return (await context.services.revocations.revokeUser(userId, { ...request, suspend: true })).sessionIds.length;
  },

  async adminRestoreUser(_parent: unknown, args: { userId: string; reason: string }, context: RequestContext) {
    const userId = parseInput(idSchema('user'), args.userId, 'userId');
    await context.services.revocations.restoreUser(userId, operatorRequest(context, parseInput(reasonSchema, args.reason, 'reason')));
    return true;
  },

  async adminRotateSigningKeys(_parent: unknown, _args: unknown, context: RequestContext) {
    const rotation = await context.services.revocations.rotateSigningKeys(operatorRequest(context, 'scheduled rotation'));
    return { ...rotation, revokedKid: null };
  },

  async adminRevokeSigningKey(_parent: unknown, args: { kid: string; reason?: string | null }, context: RequestContext) {
    const kid = parseInput(z.string().trim().min(1).max(100), args.kid, 'kid');
    const request = operatorRequest(context, parseInput(reasonSchema, args.reason ?? 'signing key compromised', 'reason'));
    const result = await context.services.revocations.revokeSigningKey(kid, request);
    return { activeKid: result.activeKid, retiredKid: null, revokedKid: result.revokedKid };
  },
};

export const adminResolvers = {
  Query,
  Mutation,
  AdminDevice: {
    hasKey: (device: { publicKeyJwk: unknown }) => device.publicKeyJwk !== null && device.publicKeyJwk !== undefined,
  },
  AuditEvent: {
    seq: (event: AuditEventRow) => event.seq?.toString() ?? '',
    data: (event: AuditEventRow) => (event.data === null || event.data === undefined ? null : JSON.stringify(event.data)),
    hash: (event: AuditEventRow) => (event.hash ? Buffer.from(event.hash).toString('hex') : null),
  },
};
