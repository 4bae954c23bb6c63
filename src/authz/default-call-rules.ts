import { z } from 'zod';

import { epochSeconds } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import { loadTransaction } from '../payments/index.ts';
import { ownershipRule, parentUserId, type CallRule, type CallRuleSet, type FieldCall } from './call-rules.ts';
import { evaluateRequirements } from './tiers.ts';

/** Reads a UUID argument; a malformed one is the caller's input error, not a denial. */
function uuidArgument(value: unknown, field: string): string {
  const parsed = z.uuid().safeParse(value);
  if (!parsed.success) throw new TollgateError('BAD_USER_INPUT', `${field}: must be an id returned by this API.`, { field });
  return parsed.data;
}

async function transactionOwner(call: FieldCall): Promise<string | null> {
  const id = uuidArgument(call.args.id, 'id');
  const row = await loadTransaction(call.context, id);
  return row?.userId ?? null;
}

async function paymentMethodOwner(call: FieldCall): Promise<string | null> {
  const input = call.args.input as { paymentMethodId?: unknown } | undefined;
  const id = uuidArgument(input?.paymentMethodId, 'input.paymentMethodId');
  const row = await call.context.services.payments.findPaymentMethod(id);
  return row?.userId ?? null;
}

/**
 * Enrolling a TOTP secret creates the factor that later satisfies aal2, so it needs the HIGH tier.
 * The first enrolment cannot demand aal2 yet: it needs HIGH without its acr values, that is a
 * recent password. Replacing a confirmed secret needs all of HIGH.
 */
const totpEnrolment: CallRule = {
  name: 'totp-enrolment',
  description: 'first enrolment: the HIGH tier without its acr values; replacing a confirmed secret: the HIGH tier',
  async check({ context, tiers }) {
    const principal = context.auth.principal;
    if (!principal) return new TollgateError('UNAUTHENTICATED');
    const high = tiers.get('HIGH');
    if (!high) throw new Error('the HIGH tier is missing from the tier set');

    const enrolled = await context.services.totp.isEnrolled(principal.userId);
    const policy = enrolled ? high : { ...high, acrValues: undefined };
    return evaluateRequirements(policy, principal, epochSeconds(context.clock.now()));
  },
};

/** The call rules of schema.graphql's sample domain, by schema coordinate. */
export const defaultCallRules: CallRuleSet = new Map<string, CallRule[]>([
  ['Transaction', [ownershipRule('transaction-owner', 'the transaction belongs to the signed-in user', parentUserId)]],
  ['PaymentMethod', [ownershipRule('payment-method-owner', 'the payment method belongs to the signed-in user', parentUserId)]],
  ['Query.transaction', [ownershipRule('transaction-id-owner', 'argument id names a transaction of the signed-in user', transactionOwner)]],
  ['Mutation.makePayment', [ownershipRule('payment-method-id-owner', 'input.paymentMethodId names a payment method of the signed-in user', paymentMethodOwner)]],
  ['Mutation.enrollTotp', [totpEnrolment]],
]);
