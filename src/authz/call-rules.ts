import type { RequestContext } from '../context.ts';
import { TollgateError } from '../errors.ts';
import type { TierSet } from './tiers.ts';

/** The parts of one resolver call that a call rule reads. */
export interface FieldCall {
  parent: unknown;
  args: Record<string, unknown>;
  context: RequestContext;
  tiers: TierSet;
}

/**
 * A rule that reads the call's parent or arguments, such as ownership. Its decision holds for one
 * call only, so it is evaluated on every call, after the field's directive policy allowed it.
 * `check` returns undefined to allow the call, or the error the client receives. A thrown exception
 * is a bug and reaches the client as INTERNAL_SERVER_ERROR.
 */
export interface CallRule {
  /** Short identifier shown in the policy report and part of the shield rule's name. */
  name: string;
  description: string;
  check(call: FieldCall): Promise<TollgateError | undefined> | TollgateError | undefined;
}

/** Call rules by schema coordinate: `Type` applies to every field of the type, `Type.field` to one field. */
export type CallRuleSet = ReadonlyMap<string, readonly CallRule[]>;

/** Returns the call rules for a field: its type's first, then its own. */
export function callRulesFor(rules: CallRuleSet, coordinate: string): CallRule[] {
  const typeName = coordinate.slice(0, coordinate.indexOf('.'));
  return [...(rules.get(typeName) ?? []), ...(rules.get(coordinate) ?? [])];
}

/**
 * Builds a rule that allows a call only when the object it reads belongs to the principal's user.
 * `ownerOf` returns the owning user id, or null when there is no such object. A missing object gets
 * the same error as another user's, so the response does not reveal which ids exist.
 */
export function ownershipRule(name: string, description: string, ownerOf: (call: FieldCall) => Promise<string | null> | string | null): CallRule {
  return {
    name,
    description,
    async check(call) {
      const principal = call.context.auth.principal;
      if (!principal) return new TollgateError('UNAUTHENTICATED');
      const owner = await ownerOf(call);
      if (owner === null || owner !== principal.userId) {
        return new TollgateError('FORBIDDEN', 'The requested object does not belong to the signed-in user.');
      }
      return undefined;
    },
  };
}

/** Reads `userId` from a parent row; a parent without one is a resolver bug, not a denial. */
export function parentUserId(call: FieldCall): string {
  const userId = (call.parent as { userId?: unknown } | null)?.userId;
  if (typeof userId !== 'string') {
    throw new Error(`ownership check needs a parent with a string userId, got ${userId === undefined ? 'none' : typeof userId}`);
  }
  return userId;
}
