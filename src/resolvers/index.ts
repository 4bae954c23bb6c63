import { accountResolvers } from './account.ts';
import { adminResolvers } from './admin.ts';
import { attestationResolvers } from './attestation.ts';
import { authResolvers } from './auth.ts';
import { catalogResolvers } from './catalog.ts';
import { deviceResolvers } from './devices.ts';
import { paymentResolvers } from './payments.ts';
import { DateTime } from './scalars.ts';
import { stepUpResolvers } from './stepup.ts';
import { userResolvers } from './users.ts';

export const resolvers = {
  DateTime,
  Query: { ...userResolvers.Query, ...catalogResolvers.Query, ...paymentResolvers.Query, ...adminResolvers.Query },
  Mutation: { ...authResolvers.Mutation, ...attestationResolvers.Mutation, ...stepUpResolvers.Mutation, ...accountResolvers.Mutation, ...paymentResolvers.Mutation, ...adminResolvers.Mutation, ...deviceResolvers.Mutation },
  AuthResult: authResolvers.AuthResult,
  User: { ...userResolvers.User, ...accountResolvers.User },
  Transaction: paymentResolvers.Transaction,
  Session: userResolvers.Session,
  Device: { ...userResolvers.Device, ...deviceResolvers.Device },
  AdminDevice: adminResolvers.AdminDevice,
  AuditEvent: adminResolvers.AuditEvent,
};
