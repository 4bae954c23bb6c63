import { GraphQLScalarType, Kind } from 'graphql';

import { TollgateError } from '../errors.ts';

export const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An ISO 8601 date and time in UTC.',
  serialize(value) {
    const date = value instanceof Date ? value : new Date(value as string);
    if (Number.isNaN(date.getTime())) throw new TypeError('DateTime cannot represent an invalid date');
    return date.toISOString();
  },
  parseValue(value) {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new TollgateError('BAD_USER_INPUT', 'DateTime must be an ISO 8601 string.');
    return date;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new TollgateError('BAD_USER_INPUT', 'DateTime must be an ISO 8601 string.');
    const date = new Date(ast.value);
    if (Number.isNaN(date.getTime())) throw new TollgateError('BAD_USER_INPUT', 'DateTime must be an ISO 8601 string.');
    return date;
  },
});
