import type { Principal } from '../authz/principal.ts';
import type { RequestContext } from '../context.ts';
import { TollgateError } from '../errors.ts';

/**
 * Returns the request's principal. The field's rule has already required a token, so a missing
 * principal here means the field was declared without one, and the call is rejected as
 * UNAUTHENTICATED.
 */
export function principalOf(context: RequestContext): Principal {
  const principal = context.auth.principal;
  if (!principal) throw new TollgateError('UNAUTHENTICATED');
  return principal;
}
