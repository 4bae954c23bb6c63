import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths pino replaces with "[redacted]". Code never logs a secret on purpose; this list is the second
 * line of defence for request headers and argument objects that reach a log line by accident.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.dpop',
  'req.headers.cookie',
  'headers.authorization',
  'headers.dpop',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.refreshToken',
  '*.accessToken',
  '*.code',
  '*.secret',
  '*.privateKey',
  'variables.*',
  'input.password',
  'password',
  'refreshToken',
  'accessToken',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'tollgate' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
