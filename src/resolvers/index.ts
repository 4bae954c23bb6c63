import { adminResolvers } from './admin.ts';
import { attestationResolvers } from './attestation.ts';
import { authResolvers } from './auth.ts';
import { catalogResolvers } from './catalog.ts';
import { deviceResolvers } from './devices.ts';
import { DateTime } from './scalars.ts';
import { userResolvers } from './users.ts';

export const resolvers = {
  DateTime,
  Query: { ...userResolvers.Query, ...catalogResolvers.Query, ...adminResolvers.Query },
  Mutation: { ...authResolvers.Mutation, ...attestationResolvers.Mutation, ...deviceResolvers.Mutation, ...adminResolvers.Mutation },
  AuthResult: authResolvers.AuthResult,
  User: userResolvers.User,
  Session: userResolvers.Session,
  Device: { ...userResolvers.Device, ...deviceResolvers.Device },
  AdminDevice: adminResolvers.AdminDevice,
  AuditEvent: adminResolvers.AuditEvent,
};
