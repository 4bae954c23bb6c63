import { z } from 'zod';

import { emailSchema, passwordSchema, type SignInResult } from '../accounts/service.ts';
import { principalFromClaims } from '../authz/principal.ts';
import type { RequestContext } from '../context.ts';
import { proveDeviceKey, trustOfNewSession } from '../devices/binding.ts';
import { deviceInputSchema } from '../devices/registry.ts';
import { TollgateError } from '../errors.ts';
import { principalOf } from './caller.ts';
import { parseInput } from './input.ts';
import { userRef } from './users.ts';

const signUpSchema = z.object({
  email: emailSchema,
  password: passwordSchema,
  displayName: z.string().trim().min(1).max(100).nullish(),
  device: deviceInputSchema,
});

const loginSchema = z.object({
  email: emailSchema,
  // Any string up to the hashing bound: a login must not tell which passwords could never exist.
  password: z.string().min(1).max(256),
  device: deviceInputSchema,
});

/** Makes the new session the request's principal, so the payload's nested fields can be read. */
export async function adoptSession(context: RequestContext, result: SignInResult) {
  const claims = await context.services.access.verify(result.pair.accessToken);
  context.auth.principal = principalFromClaims(claims, { deviceTrust: await trustOfNewSession(context.services, result.deviceId, claims) });
  return {
    __typename: 'AuthSuccess',
    tokens: result.pair,
    session: { id: result.sessionId },
    user: userRef(result.userId),
  };
}

export const authResolvers = {
  Mutation: {
    async signUp(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(signUpSchema, args.input);
      const device = await proveDeviceKey(context.services.dpop, context.facts.http, input.device);
      return adoptSession(context, await context.services.accounts.signUp({ ...input, device }, context.facts));
    },

    async login(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(loginSchema, args.input);
      const device = await proveDeviceKey(context.services.dpop, context.facts.http, input.device);
      const result = await context.services.accounts.login({ ...input, device }, context.facts);
      if ('challengeId' in result) return { __typename: 'StepUpChallenge', ...result };
      return adoptSession(context, result);
    },

    async refreshSession(_parent: unknown, args: { refreshToken: string }, context: RequestContext) {
      return context.services.sessions.refresh(args.refreshToken, context.facts);
    },

    async logout(_parent: unknown, _args: unknown, context: RequestContext) {
      const principal = principalOf(context);
      await context.services.sessions.revoke({ userId: principal.userId, sessionIds: [principal.sessionId], reason: 'logout', facts: context.facts, actorSessionId: principal.sessionId });
      return true;
    },

    async revokeSession(_parent: unknown, args: { id: string }, context: RequestContext) {
      const principal = principalOf(context);
      const id = parseInput(z.uuid({ message: 'id must be a session id' }), args.id, 'id');
      const owned = await context.services.database.prisma.session.findFirst({ where: { id, userId: principal.userId }, select: { revokedAt: true } });
      // Another user's session is reported exactly like a missing one.
      if (!owned) throw new TollgateError('BAD_USER_INPUT', 'id: no session with this id belongs to the signed-in user.', { field: 'id' });
      if (owned.revokedAt) return true;
      await context.services.sessions.revoke({ userId: principal.userId, sessionIds: [id], reason: 'revoked_by_user', facts: context.facts, actorSessionId: principal.sessionId });
      return true;
    },

    async revokeOtherSessions(_parent: unknown, _args: unknown, context: RequestContext) {
      const principal = principalOf(context);
      return context.services.sessions.revoke({ userId: principal.userId, keepSessionId: principal.sessionId, reason: 'revoked_by_user', facts: context.facts, actorSessionId: principal.sessionId });
    },
  },

  AuthResult: {
    __resolveType(value: { __typename: string }) {
      return value.__typename;
    },
  },
};
