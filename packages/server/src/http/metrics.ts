import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { Platform } from '../platform.js';
import { version } from '../core/version.js';

/** Adds process and authorization metrics to the platform's registry (one per platform: tests build several in one process). */
export function createMetrics(platform: Platform): Registry {
  const registry = platform.metrics;
  if (registry.getSingleMetric('fleetwire_authz_cache_entries')) return registry; // a second app on the same platform
  // prom-client's own names start with process_ or nodejs_ already: the prefix is only ours
  collectDefaultMetrics({ register: registry, prefix: 'fleetwire_' });
  new Gauge({
    name: 'fleetwire_build_info',
    help: 'Always 1; the labels say which Fleetwire and which Node.js run',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version, node: process.versions.node }, 1);
  const authz = platform.authorizer;
  new Gauge({
    name: 'fleetwire_authz_cache_entries',
    help: 'Entries in the device authorization cache',
    labelNames: ['cache'],
    registers: [registry],
    collect() {
      const s = authz.getStats();
      this.set({ cache: 'credentials' }, s.credentialEntries);
      this.set({ cache: 'access' }, s.accessEntries);
    },
  });
  new Counter({
    name: 'fleetwire_authz_credential_lookups_total',
    help: 'Device credential checks, by cache result',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const s = authz.getStats();
      this.reset();
      this.inc({ result: 'hit' }, s.hits);
      this.inc({ result: 'miss' }, s.misses);
    },
  });
  return registry;
}

export function installHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const existing = registry.getSingleMetric('fleetwire_http_requests_total') as Counter<'method' | 'route' | 'status'> | undefined;
  const requests = existing ?? new Counter({ name: 'fleetwire_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = (registry.getSingleMetric('fleetwire_http_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ?? new Histogram({
    name: 'fleetwire_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // a callback hook: no promise per request
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    done();
  });
}
