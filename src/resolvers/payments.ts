import { z } from 'zod';

import type { RequestContext } from '../context.ts';
import { addPaymentMethodSchema, loadTransaction, makePaymentSchema } from '../payments/index.ts';
import { principalOf } from './caller.ts';
import { parseInput } from './input.ts';

const firstSchema = z.number().int().min(1, 'must be at least 1').max(100, 'must be at most 100');
const afterSchema = z.string().max(200, 'must be a cursor from this connection').nullish();

/** A payment method row, or the id a transaction refers to. */
type PaymentMethodParent = { paymentMethodId: string | null };

/** Transaction history and payment methods (MEDIUM), payments (CRITICAL); the tiers are in schema.graphql. */
export const paymentResolvers = {
  Query: {
    async myTransactions(_parent: unknown, args: { first: number; after?: string | null }, context: RequestContext) {
      const first = parseInput(firstSchema, args.first, 'first');
      const after = parseInput(afterSchema, args.after, 'after');
      return context.services.payments.listTransactions(principalOf(context).userId, { first, after });
    },

    async transaction(_parent: unknown, args: { id: string }, context: RequestContext) {
      return loadTransaction(context, args.id);
    },

    async myPaymentMethods(_parent: unknown, _args: unknown, context: RequestContext) {
      return context.services.payments.listPaymentMethods(principalOf(context).userId);
    },
  },

  Mutation: {
    async addPaymentMethod(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(addPaymentMethodSchema, args.input);
      return context.services.payments.addPaymentMethod(principalOf(context), input, context.facts);
    },

    async makePayment(_parent: unknown, args: { input: unknown }, context: RequestContext) {
      const input = parseInput(makePaymentSchema, args.input);
      return context.services.payments.makePayment(principalOf(context), input, context.facts);
    },
  },

  Transaction: {
    async paymentMethod(transaction: PaymentMethodParent, _args: unknown, context: RequestContext) {
      if (!transaction.paymentMethodId) return null;
      return context.services.payments.findPaymentMethod(transaction.paymentMethodId);
    },
  },
};
