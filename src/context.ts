import type { Principal } from './authz/principal.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import type { Services } from './services.ts';
import type { RequestFacts } from './sessions/service.ts';
import type { TollgateError } from './errors.ts';

/** The per-request state resolvers and rules receive. */
export interface RequestContext {
  requestId: string;
  clock: Clock;
  logger: Logger;
  services: Services;
  facts: RequestFacts;
  /** Mutable: `login` and `signUp` set the principal of the session they start. */
  auth: { principal: Principal | null };
  /** Per-request results of rules that read only the principal. */
  ruleResults: Map<string, { tokenId: string; result: true | TollgateError }>;
  /** Per-request memo of loaded rows, so several fields of one object load it once. */
  loaded: Map<string, Promise<unknown>>;
}

/** Loads a value once per request under `key`. */
export function loadOnce<T>(context: RequestContext, key: string, load: () => Promise<T>): Promise<T> {
  let pending = context.loaded.get(key) as Promise<T> | undefined;
  if (!pending) {
    pending = load();
    context.loaded.set(key, pending);
  }
  return pending;
}
