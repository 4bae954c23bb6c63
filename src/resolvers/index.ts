import { attestationResolvers } from './attestation.ts';
import { authResolvers } from './auth.ts';
import { catalogResolvers } from './catalog.ts';
import { DateTime } from './scalars.ts';
import { userResolvers } from './users.ts';

export const resolvers = {
  DateTime,
  Query: { ...userResolvers.Query, ...catalogResolvers.Query },
  Mutation: { ...authResolvers.Mutation, ...attestationResolvers.Mutation },
  AuthResult: authResolvers.AuthResult,
  User: userResolvers.User,
  Session: userResolvers.Session,
  Device: userResolvers.Device,
};
