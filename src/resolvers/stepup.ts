import { z } from 'zod';

import { stepUpMethods } from '../authz/challenges.ts';
import type { RequestContext } from '../context.ts';
import { TollgateError } from '../errors.ts';
import { adoptSession } from './auth.ts';
import { principalOf } from './caller.ts';
import { parseInput } from './input.ts';

// A password goes up to the hashing bound; a TOTP code is 6 digits, checked by the verifier.
const secretInput = z.string().min(1, 'code must not be empty').max(256, 'code must have at most 256 characters');

const stepUpSchema = z.object({ method: z.enum(stepUpMethods), code: secretInput });

const completeLoginSchema = z.object({
  challengeId: z.string().max(64),
  method: z.enum(stepUpMethods),
  code: secretInput,
});

export const stepUpResolvers = {
  Mutation: {
    async stepUp(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(stepUpSchema, args.input);
      return context.services.stepUp.stepUp(principalOf(context), input, context.facts);
    },

    async completeLogin(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(completeLoginSchema, args.input);
      return adoptSession(context, await context.services.stepUp.completeLogin(input, context.facts));
    },

    async enrollTotp(_parent: unknown, _args: unknown, context: RequestContext) {
      return context.services.totp.enroll(principalOf(context), context.facts);
    },

    async confirmTotp(_parent: unknown, args: { code: string }, context: RequestContext) {
      const code = parseInput(secretInput, args.code, 'code');
      const confirmed = await context.services.totp.confirm(principalOf(context), code, context.facts);
      if (!confirmed) throw new TollgateError('INVALID_CREDENTIALS', 'code: the code does not match the pending secret; enter the current code from the authenticator app.');
      return true;
    },
  },
};
