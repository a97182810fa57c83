import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Registry } from 'prom-client';
import { AppError } from '../core/errors.js';
import type { Platform } from '../platform.js';
import { version } from '../core/version.js';
import { problems } from './schemas.js';

export function opsRoutes(app: FastifyInstance, platform: Platform, registry: Registry): void {
  // probes and scrapes come every few seconds: logged from warn up (a failing one), never at info
  const probe = { auth: 'none' as const };
  // /livez: the same, under the name Kubernetes probes use
  for (const url of ['/health', '/livez']) {
    app.get(url, {
      logLevel: 'warn',
      config: probe,
      schema: { tags: ['operations'], summary: 'Liveness: the process is up', response: { 200: Type.Object({ status: Type.Literal('ok'), version: Type.String() }) } },
    }, async () => ({ status: 'ok' as const, version }));
  }

  const ready = async () => {
    if (!(await platform.db.ping())) throw new AppError('service.unavailable', 'The database does not answer');
    const bus = platform.bus.health?.() ?? { ok: true };
    if (!bus.ok) throw new AppError('service.unavailable', bus.reason);
    const storage = platform.writer.health();
    if (!storage.ok) throw new AppError('service.unavailable', `${storage.reason} (since ${new Date(storage.since).toISOString()})`);
    return { status: 'ready' as const, database: platform.db.kind };
  };
  // /readyz: the same, under the name Kubernetes probes use
  for (const url of ['/ready', '/readyz']) {
    app.get(url, {
      logLevel: 'warn',
      config: probe,
      schema: { tags: ['operations'], summary: 'Readiness: the database answers, the message bus is connected (NATS, when configured) and the message writer is storing', response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }), ...problems(503) } },
    }, ready);
  }

  app.get('/metrics', {
    logLevel: 'warn',
    config: probe,
    schema: { tags: ['operations'], summary: 'Prometheus metrics', produces: ['text/plain'] },
  }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
