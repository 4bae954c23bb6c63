import type { z } from 'zod';

import { TollgateError } from '../errors.ts';

/** Parses GraphQL input beyond its types; the first problem becomes `BAD_USER_INPUT` naming its field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, prefix = 'input'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [prefix, ...(issue?.path ?? [])].join('.');
  throw new TollgateError('BAD_USER_INPUT', `${field}: ${issue?.message ?? 'invalid value'}`, { field });
}
