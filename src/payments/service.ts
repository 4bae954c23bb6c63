import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../clock.ts';
import { TollgateError } from '../errors.ts';
import type { RequestFacts } from '../sessions/service.ts';
import type { Db } from '../store/db.ts';

export const paymentMethodKinds = ['CARD', 'BANK_ACCOUNT', 'WALLET'] as const;

/** Payment methods one account may hold. */
export const maxPaymentMethods = 20;

export const addPaymentMethodSchema = z.object({
  kind: z.enum(paymentMethodKinds),
  label: z.string().trim().min(1, 'label must not be empty').max(60, 'label must have at most 60 characters'),
  last4: z.string().regex(/^[0-9]{4}$/, 'last4 must be exactly 4 digits'),
});

export const makePaymentSchema = z.object({
  paymentMethodId: z.uuid({ message: 'paymentMethodId must be a payment method id' }),
  amountCents: z.number().int().min(1, 'amountCents must be at least 1').max(100_000_000, 'amountCents must be at most 100000000'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code such as EUR'),
  payee: z.string().trim().min(1, 'payee must not be empty').max(100, 'payee must have at most 100 characters'),
  description: z.string().trim().max(200, 'description must have at most 200 characters').nullish(),
});

export type AddPaymentMethodInput = z.infer<typeof addPaymentMethodSchema>;
export type MakePaymentInput = z.infer<typeof makePaymentSchema>;

/** A position in the newest-first order of a user's transactions. */
interface TransactionCursor {
  createdAt: Date;
  id: string;
}

const cursorSchema = z.tuple([z.number().int(), z.uuid()]);

export function encodeCursor(row: TransactionCursor): string {
  return Buffer.from(JSON.stringify([row.createdAt.getTime(), row.id])).toString('base64url');
}

/** Parses an opaque cursor from `encodeCursor`; throws BAD_USER_INPUT naming `after` otherwise. */
export function decodeCursor(cursor: string): TransactionCursor {
  let parsed: z.ZodSafeParseResult<[number, string]>;
  try {
    parsed = cursorSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    parsed = cursorSchema.safeParse(undefined);
  }
  if (!parsed.success) throw new TollgateError('BAD_USER_INPUT', 'after: not a cursor from this connection; pass an endCursor or cursor value unchanged.', { field: 'after' });
  return { createdAt: new Date(parsed.data[0]), id: parsed.data[1] };
}

export interface TransactionPage<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/**
 * The sample payments domain on the `payment_methods` and `transactions` tables. Access rules live
 * in the schema directives and in the call rules of `authz/`. The list methods still filter by
 * user, so a rule left out by mistake cannot expose another user's rows.
 */
export class PaymentService {
  constructor(private readonly deps: { db: Db; clock: Clock; audit: AuditLog }) {}

  /** Lists a user's transactions newest first, `first` at a time, after the row `after` points at. */
  async listTransactions(userId: string, page: { first: number; after?: string | null }) {
    const after = page.after ? decodeCursor(page.after) : undefined;
    const rows = await this.deps.db.transaction.findMany({
      where: {
        userId,
        ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.first + 1,
    });

    const hasNextPage = rows.length > page.first;
    const edges = rows.slice(0, page.first).map((node) => ({ cursor: encodeCursor(node), node }));
    return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } } satisfies TransactionPage<(typeof rows)[number]>;
  }

  findTransaction(id: string) {
    return this.deps.db.transaction.findUnique({ where: { id } });
  }

  listPaymentMethods(userId: string) {
    return this.deps.db.paymentMethod.findMany({ where: { userId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  findPaymentMethod(id: string) {
    return this.deps.db.paymentMethod.findUnique({ where: { id } });
  }

  async addPaymentMethod(actor: { userId: string; sessionId: string }, input: AddPaymentMethodInput, facts: RequestFacts) {
    const count = await this.deps.db.paymentMethod.count({ where: { userId: actor.userId } });
    if (count >= maxPaymentMethods) {
      throw new TollgateError('BAD_USER_INPUT', `input: an account may hold at most ${maxPaymentMethods} payment methods; remove one first.`, { field: 'input' });
    }

    const method = await this.deps.db.paymentMethod.create({ data: { id: randomUUID(), userId: actor.userId, ...input, createdAt: this.deps.clock.now() } });
    await this.deps.audit.record({ type: 'payment_method.added', userId: actor.userId, sessionId: actor.sessionId, ip: facts.ip, data: { paymentMethodId: method.id, kind: method.kind } });
    return method;
  }

  /** Records a payment from one of the user's payment methods; the sample has no processor, so it completes at once. */
  async makePayment(actor: { userId: string; sessionId: string }, input: MakePaymentInput, facts: RequestFacts) {
    const method = await this.deps.db.paymentMethod.findFirst({ where: { id: input.paymentMethodId, userId: actor.userId }, select: { id: true } });
    if (!method) {
      throw new TollgateError('BAD_USER_INPUT', 'input.paymentMethodId: no payment method with this id belongs to the signed-in user.', { field: 'input.paymentMethodId' });
    }

    const transaction = await this.deps.db.transaction.create({
      data: {
        id: randomUUID(),
        userId: actor.userId,
        paymentMethodId: method.id,
        amountCents: input.amountCents,
        currency: input.currency,
        payee: input.payee,
        description: input.description ?? '',
        status: 'COMPLETED',
        createdAt: this.deps.clock.now(),
      },
    });
    await this.deps.audit.record({
      type: 'payment.made',
      userId: actor.userId,
      sessionId: actor.sessionId,
      ip: facts.ip,
      data: { transactionId: transaction.id, amountCents: transaction.amountCents, currency: transaction.currency },
    });
    return transaction;
  }
}
