import { z } from 'zod';

import { emailSchema, passwordSchema } from '../accounts/service.ts';
import type { RequestContext } from '../context.ts';
import { principalOf } from './caller.ts';
import { parseInput } from './input.ts';
import { userRef, type UserRef } from './users.ts';

const displayNameSchema = z.string().trim().min(1, 'displayName must not be empty').max(100, 'displayName must have at most 100 characters');

const changePasswordSchema = z.object({
  currentPassword: z.string().min(1, 'currentPassword must not be empty').max(256),
  newPassword: passwordSchema,
});

/** Profile (LOW), credential changes (HIGH) and account deletion (CRITICAL); the tiers are in schema.graphql. */
export const accountResolvers = {
  Mutation: {
    async updateProfile(_parent: unknown, args: { displayName: string }, context: RequestContext) {
      const principal = principalOf(context);
      const displayName = parseInput(displayNameSchema, args.displayName, 'displayName');
      await context.services.settings.updateProfile(principal, displayName);
      context.loaded.delete(`user:${principal.userId}`);
      return userRef(principal.userId);
    },

    async changeEmail(_parent: unknown, args: { newEmail: string }, context: RequestContext) {
      const principal = principalOf(context);
      const newEmail = parseInput(emailSchema, args.newEmail, 'newEmail');
      await context.services.settings.changeEmail(principal, newEmail, context.facts);
      context.loaded.delete(`user:${principal.userId}`);
      return userRef(principal.userId);
    },

    async changePassword(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(changePasswordSchema, args.input);
      return context.services.settings.changePassword(principalOf(context), input, context.facts);
    },

    async deleteAccount(_parent: unknown, _args: unknown, context: RequestContext) {
      await context.services.settings.deleteAccount(principalOf(context), context.facts);
      return true;
    },
  },

  User: {
    async paymentMethods(user: UserRef, _args: unknown, context: RequestContext) {
      return context.services.payments.listPaymentMethods(user.id);
    },

    async totpEnabled(user: UserRef, _args: unknown, context: RequestContext) {
      return context.services.totp.isEnrolled(user.id);
    },
  },
};
