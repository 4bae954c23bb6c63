import { loadOnce, type RequestContext } from '../context.ts';

/** Loads a transaction once per request, so an ownership rule and the resolver share one query. */
export function loadTransaction(context: RequestContext, id: string) {
  return loadOnce(context, `transaction:${id}`, () => context.services.payments.findTransaction(id));
}
