import { Counter, Gauge, type Registry } from 'prom-client';
import { iso, type Clock } from '../core/clock.js';
import type { IdentityStore } from './store.js';

const dayMs = 86_400_000;

/** Enrolment attempts by outcome, and the certificates by status and by how soon they expire (read at each scrape). */
export class IdentityMetrics {
  readonly enrolments: Counter<'outcome' | 'code'>;

  constructor(registry: Registry, store: IdentityStore, clock: Clock) {
    const registers = [registry];
    this.enrolments = new Counter({ name: 'fleetwire_identity_enrolments_total', help: 'Enrolment and renewal attempts, by outcome (issued, renewed, refused) and the code of a refusal', labelNames: ['outcome', 'code'], registers });
    new Gauge({
      name: 'fleetwire_identity_certificates',
      help: 'Device certificates the platform issued, by status (active, revoked)',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await store.certificateCounts(iso(clock.now()), []);
        this.set({ status: 'active' }, counts.active);
        this.set({ status: 'revoked' }, counts.revoked);
      },
    });
    new Gauge({
      name: 'fleetwire_identity_certificates_expiring',
      help: 'Active device certificates that expire within 30 or 7 days (label within: 30d, 7d)',
      labelNames: ['within'],
      registers,
      async collect() {
        const now = clock.now();
        const counts = await store.certificateCounts(iso(now), [iso(now + 30 * dayMs), iso(now + 7 * dayMs)]);
        this.set({ within: '30d' }, counts.expiring[0]!);
        this.set({ within: '7d' }, counts.expiring[1]!);
      },
    });
  }
}
