import { loadOnce, type RequestContext } from '../context.ts';
import { TollgateError } from '../errors.ts';

/** A user known only by id; fields other than `id` load the row once per request. */
export interface UserRef {
  id: string;
}

export function userRef(id: string): UserRef {
  return { id };
}

function loadUser(context: RequestContext, id: string) {
  return loadOnce(context, `user:${id}`, async () => {
    const user = await context.services.database.prisma.user.findUnique({ where: { id } });
    if (!user) throw new TollgateError('TOKEN_REVOKED', 'The account of this access token no longer exists.');
    return user;
  });
}

function loadSession(context: RequestContext, id: string) {
  return loadOnce(context, `session:${id}`, () => context.services.database.prisma.session.findUniqueOrThrow({ where: { id }, include: { device: true } }));
}

type SessionRow = Awaited<ReturnType<typeof loadSession>>;
type SessionValue = { id: string } | SessionRow;

async function sessionRow(context: RequestContext, value: SessionValue): Promise<SessionRow> {
  return 'userId' in value ? value : loadSession(context, value.id);
}

export const userResolvers = {
  Query: {
    me(_parent: unknown, _args: unknown, context: RequestContext) {
      const principal = context.auth.principal;
      return principal ? userRef(principal.userId) : null;
    },

    async mySessions(_parent: unknown, _args: unknown, context: RequestContext) {
      const principal = context.auth.principal;
      if (!principal) throw new TollgateError('UNAUTHENTICATED');
      return context.services.sessions.list(principal.userId);
    },

    async myDevices(_parent: unknown, _args: unknown, context: RequestContext) {
      const principal = context.auth.principal;
      if (!principal) throw new TollgateError('UNAUTHENTICATED');
      return context.services.devices.list(principal.userId);
    },

    serverInfo(_parent: unknown, _args: unknown, context: RequestContext) {
      return { time: context.clock.now(), version: process.env.npm_package_version ?? '0.1.0' };
    },
  },

  User: {
    id: (user: UserRef) => user.id,
    email: async (user: UserRef, _args: unknown, context: RequestContext) => (await loadUser(context, user.id)).email,
    displayName: async (user: UserRef, _args: unknown, context: RequestContext) => (await loadUser(context, user.id)).displayName,
    createdAt: async (user: UserRef, _args: unknown, context: RequestContext) => (await loadUser(context, user.id)).createdAt,
  },

  Session: {
    id: (session: SessionValue) => session.id,
    current: (session: SessionValue, _args: unknown, context: RequestContext) => session.id === context.auth.principal?.sessionId,
    createdAt: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).createdAt,
    lastUsedAt: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).lastUsedAt,
    expiresAt: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).idleExpiresAt,
    acr: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).acr,
    ipAddress: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).lastIp,
    userAgent: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).userAgent,
    device: async (session: SessionValue, _args: unknown, context: RequestContext) => (await sessionRow(context, session)).device,
  },

  Device: {
    hasKey: (device: { publicKeyJwk: unknown }) => device.publicKeyJwk !== null && device.publicKeyJwk !== undefined,
  },
};
