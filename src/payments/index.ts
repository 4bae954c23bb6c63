export { PaymentService, addPaymentMethodSchema, makePaymentSchema, decodeCursor, encodeCursor, maxPaymentMethods, paymentMethodKinds } from './service.ts';
export type { AddPaymentMethodInput, MakePaymentInput, TransactionPage } from './service.ts';
export { loadTransaction } from './loaders.ts';
