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
      schema: {
        operationId: url === '/health' ? 'getHealth' : 'getLiveness',
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        description: 'Answers 200 while the process runs, whatever its dependencies: for a liveness probe (`/livez` is the name Kubernetes uses). Public, logged only from warn up.',
        response: { 200: Type.Object({ status: Type.Literal('ok'), version: Type.String() }, { description: 'The process is up' }) },
      },
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
      schema: {
        operationId: url === '/ready' ? 'getReadiness' : 'getReadyz',
        tags: ['operations'],
        summary: 'Readiness: the database answers, the message bus is connected (NATS, when configured) and the message writer is storing',
        description: 'For a readiness probe or a load balancer (`/readyz` is the name Kubernetes uses): 503 with the reason while the process should not get traffic. Public, logged only from warn up.',
        response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }, { description: 'Ready for traffic' }), ...problems(503) },
      },
    }, ready);
  }

  app.get('/metrics', {
    logLevel: 'warn',
    config: probe,
    schema: {
      operationId: 'getMetrics',
      tags: ['operations'],
      summary: 'Prometheus metrics',
      description: 'Every metric of this process in the Prometheus text format (docs/operations.md lists them). Public, logged only from warn up.',
      response: { 200: { description: 'The metrics', content: { 'text/plain': { schema: Type.String() } } } },
    },
  }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
