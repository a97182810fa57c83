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

/** Query parameters whose values are never logged: WebSocket clients send credentials as `?authorization=`. */
const secretQueryParams = /([?&](?:authorization|token|access_token|refresh_token|secret|password)=)[^&#]*/gi;

function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(secretQueryParams, '$1[redacted]') : url;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** The request as Fastify logs it (`incoming request`), with credentials in the query string redacted. */
function serializeRequest(req: LoggedRequest) {
  return { method: req.method, url: req.url === undefined ? undefined : redactUrl(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'fleetwire' }, redact: { paths: redactPaths, censor: '[redacted]' }, serializers: { req: serializeRequest } }, destination);
}
