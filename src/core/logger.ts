import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths never written to logs, whatever the log level. */
export const redactPaths = [
  'password',
  'secret',
  '*.password',
  '*.secret',
  '*.current_password',
  '*.new_password',
  '*.refresh_token',
  '*.access_token',
  '*.token',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'fleetwire' }, redact: { paths: redactPaths, censor: '[redacted]' } }, destination);
}
