import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorCodes, type ErrorCode } from '../core/errors.js';
import { httpStatusOf } from './errors.js';

export const problemContentType = 'application/problem+json';

function problemBody(req: Pick<FastifyRequest, 'url' | 'id'>, status: number, code: ErrorCode | string, title: string, detail: string, extra?: Record<string, unknown>) {
  return {
    type: `https://fleetwire.dev/problems/${code}`,
    title,
    status,
    detail,
    code,
    instance: req.url.split('?')[0],
    request_id: String(req.id),
    ...extra,
  };
}

/** Fastify's own errors that have a natural code of ours. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request.too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'request.unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request.invalid',
  FST_ERR_CTP_INVALID_JSON_BODY: 'request.invalid',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'request.invalid',
  FST_ERR_VALIDATION: 'request.invalid',
};

/** Maps every error to RFC 9457 problem+json once, at the edge. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) {
      if (err.kind === 'rate_limited' && err.details?.retry_after) reply.header('retry-after', String(err.details.retry_after));
      if (err.kind === 'unauthenticated') reply.header('www-authenticate', 'Bearer realm="fleetwire"');
      const status = httpStatusOf(err.code);
      req.log.info({ code: err.code, status }, err.message);
      return reply.code(status).type(problemContentType).send(problemBody(req, status, err.code, err.title, err.message, err.details));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const errors = fe.validation.map((v) => ({ path: `${fe.validationContext ?? ''}${v.instancePath || ''}`, message: v.message ?? 'invalid' }));
      const detail = `${fe.validationContext ?? 'request'}${fe.validation[0]?.instancePath ?? ''} ${fe.validation[0]?.message ?? 'is invalid'}`;
      req.log.info({ code: 'request.invalid', errors }, 'invalid request');
      return reply.code(400).type(problemContentType).send(problemBody(req, 400, 'request.invalid', errorCodes['request.invalid'].title, detail, { errors }));
    }
    const code = fe.code ? fastifyCodes[fe.code] : undefined;
    if (code) {
      const status = httpStatusOf(code);
      req.log.info({ code, status }, fe.message);
      return reply.code(status).type(problemContentType).send(problemBody(req, status, code, errorCodes[code].title, fe.message));
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      req.log.info({ err: fe }, 'client error');
      return reply.code(fe.statusCode).type(problemContentType).send(problemBody(req, fe.statusCode, 'request.invalid', errorCodes['request.invalid'].title, fe.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).type(problemContentType).send(problemBody(req, 500, 'internal', errorCodes.internal.title, 'Something went wrong; the request id helps find it in the logs'));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type(problemContentType).send(problemBody(req, 404, 'route.not_found', errorCodes['route.not_found'].title, `${req.method} ${req.url.split('?')[0]} is not a route`));
  });
}

/**
 * Errors Fastify raises before a request reaches a route (a path it cannot decode, a parameter over
 * its length limit), as problem+json like every other refusal (Fastify's `frameworkErrors`). A
 * refused WebSocket upgrade has no server response behind it: its socket is closed here, or it
 * would stay open (and hold up shutdown) for good.
 */
export function frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const code: ErrorCode = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'request.uri_too_long' : 'request.invalid';
  const status = code === 'request.invalid' && err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : httpStatusOf(code);
  req.log.info({ code: err.code, status }, err.message);
  if (req.headers.upgrade) {
    reply.header('connection', 'close');
    reply.raw.once('finish', () => req.raw.socket.destroy());
  }
  void reply.code(status).type(problemContentType).send(problemBody(req, status, code, errorCodes[code].title, err.message));
}

/**
 * A request Node's HTTP parser refused (malformed, headers over the size limit, too slow): answered
 * as problem+json and the connection closed, as Node itself closes it (Fastify's `clientErrorHandler`).
 */
export function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // a reset connection has nobody left to answer (https://nodejs.org/api/http.html#event-clienterror)
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'request.headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request.timeout' : 'request.invalid';
  const status = httpStatusOf(code);
  const detail = code === 'request.invalid' ? 'The request is not valid HTTP' : errorCodes[code].title;
  const body = JSON.stringify(problemBody({ url: '', id: '' }, status, code, errorCodes[code].title, detail));
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${problemContentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
