import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLFormattedError } from 'graphql';

import type { Logger } from './logger.ts';

/** Error codes of graphql-js and Apollo Server that describe a bad request, not a server fault. */
export const requestErrorCodes = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'BAD_REQUEST', 'OPERATION_RESOLUTION_FAILURE', 'PERSISTED_QUERY_NOT_FOUND', 'PERSISTED_QUERY_NOT_SUPPORTED']);

/**
 * Rewrites a graphql-js or Apollo request error for the client: the contract's `BAD_USER_INPUT` code
 * with the original code as `reason`, and a message that repeats no submitted value and suggests no
 * field name. graphql-js prints the whole rejected variable value, which may hold a password or a
 * private key, and "Did you mean" suggestions map the schema for someone without introspection.
 */
export function formatRequestError(formatted: GraphQLFormattedError, originalCode: string): GraphQLFormattedError {
  const { message, field } = sanitizeRequestMessage(formatted.message);
  return {
    message,
    locations: formatted.locations,
    path: formatted.path,
    extensions: { code: 'BAD_USER_INPUT', reason: originalCode, ...(field ? { field } : {}) },
  };
}

/** Removes echoed values and suggestions from a graphql-js message; names the field when it can. */
export function sanitizeRequestMessage(raw: string): { message: string; field?: string } {
  const text = raw.replace(/\s*Did you mean [^?]*\?/g, '');
  const variable = /^Variable "\$([A-Za-z0-9_]+)" got invalid value /.exec(text);
  if (!variable) return { message: withoutValue(text) };

  // graphql-js: `Variable "$v" got invalid value <value> at "v.path"; <reason>`, where <value> is
  // the client's own input and may be anything, so only the path and the reason are kept.
  const paths = [...text.matchAll(/ at "([^"]+)"; /g)];
  const field = paths.at(-1)?.[1] ?? variable[1];
  const separator = text.lastIndexOf('; ');
  const reason = separator >= 0 ? withoutValue(text.slice(separator + 2)) : 'the value does not match its type.';
  return { message: `Variable "$${variable[1]}" has an invalid value at "${field}": ${reason}`, field };
}

/** `String cannot represent a non string value: 123` becomes `String cannot represent a non string value.` */
function withoutValue(text: string): string {
  return text.replace(/(cannot represent[^:]*):[\s\S]*$/, '$1.');
}

/**
 * Registers handlers that send Fastify's own errors (malformed JSON, body too large, unsupported
 * media type) and unknown routes in the GraphQL error shape with a contract code, instead of
 * Fastify's default body.
 */
export function registerHttpErrorHandlers(app: { setErrorHandler: Function; setNotFoundHandler: Function }, logger: Logger): void {
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      logger.error({ err: error, requestId: request.id }, 'request failed');
      return sendError(reply, 500, 'Internal server error.', 'INTERNAL_SERVER_ERROR');
    }
    const { message, reason } = clientErrorOf(error);
    return sendError(reply, status, message, 'BAD_USER_INPUT', reason);
  });
  app.setNotFoundHandler(async (request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, 404, `No route ${request.method} ${request.url.split('?')[0]}: GraphQL is served at POST /graphql.`, 'BAD_USER_INPUT', 'NOT_FOUND'),
  );
}

/** Returns a message and a reason for a Fastify client error, without Fastify's internal error names. */
function clientErrorOf(error: FastifyError): { message: string; reason: string } {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { message: 'The request body is not valid JSON.', reason: 'INVALID_JSON' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { message: 'The request body is too large.', reason: 'BODY_TOO_LARGE' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { message: 'Unsupported Content-Type: send application/json.', reason: 'UNSUPPORTED_MEDIA_TYPE' };
    default:
      // Fastify rejects `__proto__` and `constructor.prototype` keys to guard against prototype poisoning.
      if (error.message.includes('prototype')) return { message: 'The request body contains a forbidden key (__proto__ or constructor.prototype).', reason: 'FORBIDDEN_KEY' };
      return { message: 'The request is invalid.', reason: 'BAD_REQUEST' };
  }
}

function sendError(reply: FastifyReply, status: number, message: string, code: string, reason?: string) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ errors: [{ message, extensions: { code, ...(reason ? { reason } : {}) } }] });
}
