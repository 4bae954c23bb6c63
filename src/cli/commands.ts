import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { auditFilterSchema, exportAuditEvents, verifyAuditChain } from '../audit/index.ts';
import { isOperatorRole, operatorRoles, scopesForRoles } from '../authz/roles.ts';
import { TollgateError } from '../errors.ts';
import type { RevocationCriteria } from '../sessions/criteria.ts';
import { CliUsageError, type CliIo, type CliServices } from './context.ts';

/** One `tollgate <group> <action>` command: its options and what it does. */
export interface Command {
  usage: string;
  summary: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Number of positional arguments after the action. */
  positionals: string[];
  run(services: CliServices, args: ParsedArgs, io: CliIo): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

const reasonOption = { reason: { type: 'string' as const } };

function reasonOf(args: ParsedArgs, fallback: string): string {
  const reason = typeof args.values.reason === 'string' ? args.values.reason.trim() : '';
  return reason === '' ? fallback : reason.slice(0, 200);
}

function requireRedis<T>(value: T | undefined): T {
  if (value === undefined) throw new CliUsageError('REDIS_URL is not set: running gateways learn of revocations through Redis, so set it to the deployment\'s Redis.');
  return value;
}

function list(value: string | boolean | string[] | undefined): string[] | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  return (Array.isArray(value) ? value : [value]).flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item.length > 0);
}

function line(io: CliIo, text: string): void {
  io.stdout.write(`${text}\n`);
}

function progress(io: CliIo, text: string): void {
  io.stderr.write(`${text}\n`);
}

/** Builds bulk criteria from `sessions revoke` options; the criteria schema validates them. */
function criteriaFrom(args: ParsedArgs): Record<string, unknown> {
  const criteria: Record<string, unknown> = {
    userIds: list(args.values.user),
    deviceIds: list(args.values.device),
    sessionIds: list(args.values.session),
    platforms: list(args.values.platform)?.map((platform) => platform.toUpperCase()),
    appVersion: args.values['app-version'],
    createdBefore: args.values['created-before'],
    createdAfter: args.values['created-after'],
    lastSeenNetwork: args.values.network,
    attestation: list(args.values.attestation)?.map((value) => value.toUpperCase()),
    riskLevels: list(args.values.risk)?.map((value) => value.toUpperCase()),
  };
  return Object.fromEntries(Object.entries(criteria).filter(([, value]) => value !== undefined));
}

async function revokeSessions(services: CliServices, args: ParsedArgs, io: CliIo): Promise<number> {
  const bulk = requireRedis(services.bulk);
  const criteria = parseCriteria(services, criteriaFrom(args));
  const reason = reasonOf(args, 'revoked by an operator');
  const request = { reason, actor: services.actor };

  if (args.values['dry-run']) {
    line(io, `${await bulk.count(criteria)} active sessions match; nothing was revoked (dry run).`);
    return 0;
  }

  // One user and nothing else: end everything, including access tokens of sessions revoked earlier.
  if (criteria.userIds?.length === 1 && Object.keys(criteria).length === 1) {
    const revoked = await requireRedis(services.revocations).revokeUser(criteria.userIds[0] as string, request);
    line(io, `Revoked ${revoked.sessionIds.length} sessions of user ${criteria.userIds[0]}; access tokens issued to the user before now are rejected.`);
    return 0;
  }

  const job = await bulk.create(criteria, request);
  progress(io, `job ${job.id}: revoking ${job.total} sessions in batches (Ctrl-C pauses; resume with \`npx tollgate sessions resume ${job.id}\`)`);
  return runJob(services, job.id, io);
}

function parseCriteria(services: CliServices, input: Record<string, unknown>): RevocationCriteria {
  try {
    return requireRedis(services.bulk).parseCriteria(input);
  } catch (error) {
    if (error instanceof TollgateError) throw new CliUsageError(`${error.message} (see \`npx tollgate help\`)`);
    throw error;
  }
}

async function runJob(services: CliServices, jobId: string, io: CliIo): Promise<number> {
  const bulk = requireRedis(services.bulk);
  const result = await bulk.run(jobId, {
    signal: io.signal,
    onProgress: ({ revoked, total }) => progress(io, `revoked ${revoked}/${total} (${total === 0 ? 100 : Math.floor((revoked / total) * 100)}%)`),
  });
  if (result.status === 'paused') {
    line(io, `Paused job ${jobId} after ${result.revoked} of ${result.total} sessions; resume with \`npx tollgate sessions resume ${jobId}\`.`);
    return 130;
  }
  line(io, `Job ${jobId} finished: revoked ${result.revoked} sessions (${result.total} matched when it started).`);
  return 0;
}

async function exportAudit(services: CliServices, args: ParsedArgs, io: CliIo): Promise<number> {
  const parsed = auditFilterSchema.safeParse({
    userId: args.values.user,
    sessionId: args.values.session,
    deviceId: args.values.device,
    types: list(args.values.type),
    from: args.values.from === undefined ? undefined : new Date(args.values.from as string),
    to: args.values.to === undefined ? undefined : new Date(args.values.to as string),
  });
  if (!parsed.success) throw new CliUsageError(`invalid filter: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);

  // Audit events name users, devices and IP addresses: the file is readable by its owner only.
  const file = typeof args.values.output === 'string' ? createWriteStream(args.values.output, { mode: 0o600 }) : undefined;
  const out = file ?? io.stdout;
  let count = 0;
  await services.auditChainer.chainAll();
  for await (const event of exportAuditEvents(services.database.prisma, parsed.data)) {
    const ok = out.write(`${JSON.stringify(event)}\n`);
    if (file && !ok) await once(file, 'drain');
    count += 1;
    if (count % 10_000 === 0) progress(io, `exported ${count} events`);
  }
  if (file) {
    file.end();
    await once(file, 'finish');
  }
  progress(io, `exported ${count} events`);
  return 0;
}

async function changeRoles(services: CliServices, args: ParsedArgs, io: CliIo, grant: boolean): Promise<number> {
  const [userId, role] = args.positionals as [string, string];
  if (!isOperatorRole(role)) throw new CliUsageError(`unknown role ${role}: expected one of ${operatorRoles.join(', ')}`);
  const user = await services.database.prisma.user.findUnique({ where: { id: userId }, select: { roles: true } });
  if (!user) throw new CliUsageError(`no user ${userId}`);

  const roles = grant ? [...new Set([...user.roles, role])] : user.roles.filter((existing) => existing !== role);
  await services.database.prisma.$transaction(async (tx) => {
    await tx.user.update({ where: { id: userId }, data: { roles } });
    await services.audit.record({ type: 'operator.roles_changed', userId, actor: services.actor, reason: grant ? `granted ${role}` : `revoked ${role}`, data: { roles } }, tx);
  });
  if (grant) {
    line(io, `User ${userId} now has roles ${roles.join(', ')}; the scopes apply from the user's next sign-in.`);
    return 0;
  }
  // Sessions keep the scopes they started with, so taking a role away ends them.
  const revoked = await requireRedis(services.revocations).revokeUser(userId, { reason: `operator role ${role} revoked`, actor: services.actor });
  line(io, `User ${userId} now has roles ${roles.join(', ') || '(none)'}; revoked ${revoked.sessionIds.length} sessions that carried the old scopes.`);
  return 0;
}

export const commands: Record<string, Command> = {
  'sessions revoke': {
    usage: 'sessions revoke [--user ID] [--device ID] [--session ID] [--platform IOS|ANDROID|WEB|OTHER] [--app-version RANGE] [--created-before ISO] [--created-after ISO] [--network CIDR] [--attestation missing|failed] [--risk LOW|MEDIUM|HIGH] [--reason TEXT] [--dry-run]',
    summary: 'Revoke the active sessions matching every given criterion; --user alone also rejects all of the user\'s earlier access tokens.',
    options: {
      user: { type: 'string', multiple: true },
      device: { type: 'string', multiple: true },
      session: { type: 'string', multiple: true },
      platform: { type: 'string', multiple: true },
      'app-version': { type: 'string' },
      'created-before': { type: 'string' },
      'created-after': { type: 'string' },
      network: { type: 'string' },
      attestation: { type: 'string', multiple: true },
      risk: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      ...reasonOption,
    },
    positionals: [],
    run: revokeSessions,
  },
  'sessions resume': {
    usage: 'sessions resume JOB_ID',
    summary: 'Resume a paused or interrupted bulk revocation job.',
    options: {},
    positionals: ['JOB_ID'],
    run: async (services, args, io) => runJob(services, args.positionals[0] as string, io),
  },
  'sessions job': {
    usage: 'sessions job JOB_ID',
    summary: 'Print a bulk revocation job and its progress as JSON.',
    options: {},
    positionals: ['JOB_ID'],
    run: async (services, args, io) => {
      const job = await requireRedis(services.bulk).get(args.positionals[0] as string);
      if (!job) throw new CliUsageError(`no revocation job ${args.positionals[0]}`);
      line(io, JSON.stringify(job));
      return 0;
    },
  },
  'devices suspend': {
    usage: 'devices suspend DEVICE_ID [--reason TEXT]',
    summary: 'Revoke every session of the device and refuse new ones until it is restored.',
    options: reasonOption,
    positionals: ['DEVICE_ID'],
    run: async (services, args, io) => {
      const revoked = await requireRedis(services.revocations).suspendDevice(args.positionals[0] as string, { reason: reasonOf(args, 'device suspended by an operator'), actor: services.actor });
      line(io, `Suspended device ${args.positionals[0]}; revoked ${revoked.sessionIds.length} sessions.`);
      return 0;
    },
  },
  'devices restore': {
    usage: 'devices restore DEVICE_ID [--reason TEXT]',
    summary: 'Let a suspended device start sessions again; revoked sessions stay revoked.',
    options: reasonOption,
    positionals: ['DEVICE_ID'],
    run: async (services, args, io) => {
      await requireRedis(services.revocations).restoreDevice(args.positionals[0] as string, { reason: reasonOf(args, 'device restored by an operator'), actor: services.actor });
      line(io, `Restored device ${args.positionals[0]}; the user signs in on it again.`);
      return 0;
    },
  },
  'users suspend': {
    usage: 'users suspend USER_ID [--reason TEXT]',
    summary: 'Revoke every session and access token of the user and refuse sign-in until restored.',
    options: reasonOption,
    positionals: ['USER_ID'],
    run: async (services, args, io) => {
      const revoked = await requireRedis(services.revocations).revokeUser(args.positionals[0] as string, { reason: reasonOf(args, 'user suspended by an operator'), actor: services.actor, suspend: true });
      line(io, `Suspended user ${args.positionals[0]}; revoked ${revoked.sessionIds.length} sessions.`);
      return 0;
    },
  },
  'users restore': {
    usage: 'users restore USER_ID [--reason TEXT]',
    summary: 'Let a suspended user sign in again; revoked sessions stay revoked.',
    options: reasonOption,
    positionals: ['USER_ID'],
    run: async (services, args, io) => {
      await requireRedis(services.revocations).restoreUser(args.positionals[0] as string, { reason: reasonOf(args, 'user restored by an operator'), actor: services.actor });
      line(io, `Restored user ${args.positionals[0]}; they can sign in again.`);
      return 0;
    },
  },
  'keys list': {
    usage: 'keys list',
    summary: 'Print every signing key with its state as JSON lines.',
    options: {},
    positionals: [],
    run: async (services, _args, io) => {
      for (const key of await services.ring.list()) line(io, JSON.stringify(key));
      return 0;
    },
  },
  'keys rotate': {
    usage: 'keys rotate [--reason TEXT]',
    summary: 'Promote the next signing key; tokens signed by the retired one stay valid until they expire.',
    options: reasonOption,
    positionals: [],
    run: async (services, args, io) => {
      const rotation = await requireRedis(services.revocations).rotateSigningKeys({ reason: reasonOf(args, 'scheduled rotation'), actor: services.actor });
      line(io, `Active signing key is now ${rotation.activeKid}; retired ${rotation.retiredKid ?? '(none)'}.`);
      return 0;
    },
  },
  'keys revoke': {
    usage: 'keys revoke KID [--reason TEXT]',
    summary: 'Take a compromised signing key out of the ring on every instance; every token it signed is rejected.',
    options: reasonOption,
    positionals: ['KID'],
    run: async (services, args, io) => {
      const result = await requireRedis(services.revocations).revokeSigningKey(args.positionals[0] as string, { reason: reasonOf(args, 'signing key compromised'), actor: services.actor });
      line(io, `Revoked signing key ${result.revokedKid}${result.wasActive ? ' (it was active)' : ''}; active key is ${result.activeKid}. Tokens it signed are rejected; apps refresh into new ones.`);
      return 0;
    },
  },
  'audit verify': {
    usage: 'audit verify',
    summary: 'Recompute the audit hash chain; exit status 1 names the first broken row.',
    options: {},
    positionals: [],
    run: async (services, _args, io) => {
      await services.auditChainer.chainAll();
      const result = await verifyAuditChain(services.database.prisma, (checked) => {
        if (checked % 10_000 === 0) progress(io, `checked ${checked} events`);
      });
      if (result.ok) {
        line(io, `Audit chain intact: ${result.checked} events, head seq ${result.head?.seq ?? 0} hash ${result.head?.hash ?? '(empty)'}.`);
        return 0;
      }
      const broken = result.firstBreak;
      line(io, `Audit chain broken at row id ${broken?.id} seq ${broken?.seq ?? '(none)'} (${broken?.reason}): ${broken?.message}. ${result.checked} events before it are intact.`);
      return 1;
    },
  },
  'audit export': {
    usage: 'audit export [--user ID] [--session ID] [--device ID] [--type TYPE] [--from ISO] [--to ISO] [--output FILE]',
    summary: 'Write matching audit events, oldest first, as JSON lines with their chain hashes.',
    options: {
      user: { type: 'string' },
      session: { type: 'string' },
      device: { type: 'string' },
      type: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      output: { type: 'string' },
    },
    positionals: [],
    run: exportAudit,
  },
  'operators grant': {
    usage: `operators grant USER_ID ROLE   (ROLE: ${operatorRoles.join(', ')})`,
    summary: 'Give a user an operator role; its admin scopes apply from their next sign-in.',
    options: {},
    positionals: ['USER_ID', 'ROLE'],
    run: (services, args, io) => changeRoles(services, args, io, true),
  },
  'operators revoke': {
    usage: 'operators revoke USER_ID ROLE',
    summary: 'Take an operator role away and revoke the user\'s sessions that carried its scopes.',
    options: {},
    positionals: ['USER_ID', 'ROLE'],
    run: (services, args, io) => changeRoles(services, args, io, false),
  },
  'operators list': {
    usage: 'operators list',
    summary: 'Print every user with an operator role and the scopes it grants, as JSON lines.',
    options: {},
    positionals: [],
    run: async (services, _args, io) => {
      const users = await services.database.prisma.user.findMany({ where: { roles: { isEmpty: false } }, select: { id: true, email: true, roles: true } });
      for (const user of users) line(io, JSON.stringify({ ...user, scopes: scopesForRoles(user.roles) }));
      return 0;
    },
  },
};
