import { z } from 'zod';

import type { RequestContext } from '../context.ts';
import { attestationKinds, challengePattern, type AttestationCaller } from '../devices/attestation/index.ts';
import { TollgateError } from '../errors.ts';
import { parseInput } from './input.ts';

const challenge = z.string().regex(challengePattern, 'must be a challenge returned by attestationChallenge');
const base64 = z.string().max(16_384).regex(/^[A-Za-z0-9+/_-]+={0,2}$/, 'must be base64');
// RFC 7516 §7.1: a compact JWE has five base64url parts separated by dots.
const compactJwe = z.string().max(16_384).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/, 'must be a Play Integrity token (a compact JWE)');

const evidenceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal(attestationKinds[0]), challenge, payload: compactJwe, keyId: z.null().optional() }),
  z.object({ kind: z.literal(attestationKinds[1]), challenge, payload: base64, keyId: base64.max(64) }),
]);

const assertionSchema = z.object({ challenge, assertion: base64 });

function callerOf(context: RequestContext): AttestationCaller {
  const principal = context.auth.principal;
  if (!principal) throw new TollgateError('UNAUTHENTICATED');
  return { userId: principal.userId, sessionId: principal.sessionId, deviceId: principal.deviceId };
}

export const attestationResolvers = {
  Mutation: {
    attestationChallenge(_parent: unknown, _args: unknown, context: RequestContext) {
      return context.services.attestation.issueChallenge(callerOf(context));
    },

    attestDevice(_parent: unknown, args: { evidence: unknown }, context: RequestContext) {
      const caller = callerOf(context);
      const evidence = parseInput(evidenceSchema, args.evidence, 'evidence');
      return context.services.attestation.attest(caller, { ...evidence, keyId: evidence.keyId ?? undefined }, context.facts);
    },

    assertDevice(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const caller = callerOf(context);
      const input = parseInput(assertionSchema, args.input);
      return context.services.attestation.assert(caller, input, context.facts);
    },
  },
};
