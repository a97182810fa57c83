import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../core/ids.js';
import type { Bus } from './bus.js';
import type { Envelope } from './envelope.js';

export interface BusFactory {
  /** A fresh, isolated bus with these durable consumer groups declared. */
  make(durable: string[]): Promise<Bus>;
  /** A second handle on the same bus (another process, for NATS); undefined when the implementation has no such thing. */
  reopen?(bus: Bus, durable: string[]): Promise<Bus>;
}

export function envelope(channel: string, subtopic = '', payload = 'hello', extra: Partial<Envelope> = {}): Envelope {
  return {
    id: uuidv7(),
    org: '0195f0c8-0000-7000-8000-000000000001',
    channel,
    subtopic,
    publisher: '0195f0c8-0000-7000-8000-000000000002',
    protocol: 'http',
    contentType: 'application/senml+json',
    payload: Buffer.from(payload),
    receivedAt: Date.now(),
    ...extra,
  };
}

function collector() {
  const got: Envelope[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  return {
    got,
    push(e: Envelope) {
      got.push(e);
      waiters = waiters.filter((w) => (got.length >= w.n ? (w.resolve(), false) : true));
    },
    until(n: number, ms = 5000): Promise<void> {
      if (got.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out with ${got.length}/${n} messages`)), ms);
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
}

const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

/** The behaviour every Bus implementation must have. */
export function runBusContract(name: string, factory: BusFactory): void {
  describe(`bus contract: ${name}`, () => {
    const open: Bus[] = [];
    const make = async (durable: string[] = []) => {
      const b = await factory.make(durable);
      open.push(b);
      return b;
    };
    after(async () => {
      for (const b of open.reverse()) await b.close().catch(() => {});
    });

    test('a live subscriber gets the envelope intact', async () => {
      const bus = await make();
      const c = collector();
      const sub = await bus.subscribe('ch-a', '#', (e) => c.push(e));
      const sent = envelope('ch-a', 'room/1', 'payload \u0000 bytes', { protocol: 'mqtt', contentType: 'application/octet-stream' });
      await bus.publish(sent);
      await c.until(1);
      const got = c.got[0]!;
      assert.deepEqual({ ...got, payload: got.payload.toString() }, { ...sent, payload: sent.payload.toString() });
      sub.unsubscribe();
    });

    test('subtopic filters: exact, + one segment, # the rest including the parent, empty for none', async () => {
      const bus = await make();
      const filters = ['', 'a', 'a/+', 'a/#', '+/b', '#'];
      const got = new Map(filters.map((f) => [f, [] as string[]]));
      for (const f of filters) await bus.subscribe('ch-f', f, (e) => got.get(f)!.push(e.subtopic));
      for (const s of ['', 'a', 'a/b', 'a/b/c', 'x/b']) await bus.publish(envelope('ch-f', s));
      await bus.publish(envelope('other-channel', 'a'));
      await settle();
      const sorted = (xs: string[]) => [...xs].sort();
      assert.deepEqual(sorted(got.get('')!), ['']);
      assert.deepEqual(sorted(got.get('a')!), ['a']);
      assert.deepEqual(sorted(got.get('a/+')!), ['a/b']);
      assert.deepEqual(sorted(got.get('a/#')!), ['a', 'a/b', 'a/b/c']);
      assert.deepEqual(sorted(got.get('+/b')!), ['a/b', 'x/b']);
      assert.deepEqual(sorted(got.get('#')!), ['', 'a', 'a/b', 'a/b/c', 'x/b']);
    });

    test('a queue group: each message reaches one member, the others still get every message', async () => {
      const bus = await make();
      const a = collector();
      const b = collector();
      const all = collector();
      await bus.subscribe('ch-q', '#', (e) => a.push(e), { queue: 'workers' });
      await bus.subscribe('ch-q', 'x/#', (e) => b.push(e), { queue: 'workers' });
      await bus.subscribe('ch-q', '#', (e) => all.push(e));
      for (let i = 0; i < 20; i++) await bus.publish(envelope('ch-q', 'x/y', `m${i}`));
      await all.until(20);
      await settle();
      assert.equal(a.got.length + b.got.length, 20, 'no message twice');
      assert.ok(a.got.length > 0 && b.got.length > 0, `both members served (${a.got.length}/${b.got.length})`);
    });

    test('unsubscribe stops delivery', async () => {
      const bus = await make();
      const c = collector();
      const sub = await bus.subscribe('ch-u', '#', (e) => c.push(e));
      await bus.publish(envelope('ch-u'));
      await c.until(1);
      sub.unsubscribe();
      await bus.publish(envelope('ch-u'));
      await settle();
      assert.equal(c.got.length, 1);
    });

    test('a subscriber that throws does not stop the others', async () => {
      const bus = await make();
      const c = collector();
      await bus.subscribe('ch-t', '#', () => {
        throw new Error('boom');
      });
      await bus.subscribe('ch-t', '#', (e) => c.push(e));
      await bus.publish(envelope('ch-t'));
      await c.until(1);
    });

    test('a durable consumer gets every message in order, including those published before it started', async () => {
      const bus = await make(['writer']);
      for (let i = 0; i < 5; i++) await bus.publish(envelope('ch-d', '', `m${i}`));
      const c = collector();
      const consumer = await bus.consume('writer', async (batch) => batch.forEach((e) => c.push(e)), { maxBatch: 2 });
      for (let i = 5; i < 10; i++) await bus.publish(envelope('ch-d', '', `m${i}`));
      await c.until(10);
      assert.deepEqual(c.got.map((e) => e.payload.toString()), Array.from({ length: 10 }, (_, i) => `m${i}`));
      await consumer.stop();
    });

    test('a batch whose handler fails is delivered again', async () => {
      const bus = await make(['flaky']);
      let failures = 0;
      const c = collector();
      const consumer = await bus.consume('flaky', async (batch) => {
        if (failures < 2) {
          failures++;
          throw new Error('database down');
        }
        batch.forEach((e) => c.push(e));
      });
      await bus.publish(envelope('ch-r', '', 'precious'));
      await c.until(1, 10_000);
      assert.equal(c.got[0]!.payload.toString(), 'precious');
      assert.equal(failures, 2);
      await consumer.stop();
    });

    test('messages published while the consumer is stopped are delivered when it comes back', async () => {
      const bus = await make(['restart']);
      const c = collector();
      let consumer = await bus.consume('restart', async (batch) => batch.forEach((e) => c.push(e)));
      await bus.publish(envelope('ch-s', '', 'before'));
      await c.until(1);
      await consumer.stop();
      for (let i = 0; i < 3; i++) await bus.publish(envelope('ch-s', '', `while-down-${i}`));
      await settle();
      assert.equal(c.got.length, 1);
      consumer = await bus.consume('restart', async (batch) => batch.forEach((e) => c.push(e)));
      await c.until(4);
      assert.deepEqual(c.got.map((e) => e.payload.toString()), ['before', 'while-down-0', 'while-down-1', 'while-down-2']);
      await consumer.stop();
    });

    test('each consumer group gets every message', async () => {
      const bus = await make(['g1', 'g2']);
      const a = collector();
      const b = collector();
      const ca = await bus.consume('g1', async (batch) => batch.forEach((e) => a.push(e)));
      const cb = await bus.consume('g2', async (batch) => batch.forEach((e) => b.push(e)));
      for (let i = 0; i < 20; i++) await bus.publish(envelope('ch-g', '', `m${i}`));
      await a.until(20);
      await b.until(20);
      await ca.stop();
      await cb.stop();
    });

    test('broadcasts reach every handler of the topic, and only of that topic', async () => {
      const bus = await make();
      const got: string[] = [];
      const other: string[] = [];
      const sub = bus.onBroadcast('authz', (d) => got.push(d));
      bus.onBroadcast('else', (d) => other.push(d));
      if (bus.kind === 'nats') await settle(50);
      bus.broadcast('authz', '{"device":"d1"}');
      await (bus.kind === 'nats' ? settle() : Promise.resolve());
      assert.deepEqual(got, ['{"device":"d1"}']);
      assert.deepEqual(other, []);
      sub.unsubscribe();
      bus.broadcast('authz', 'again');
      await (bus.kind === 'nats' ? settle() : Promise.resolve());
      assert.equal(got.length, 1);
    });

    if (factory.reopen) {
      test('a broadcast from one process reaches the others', async () => {
        const bus = await make();
        const other = await factory.reopen!(bus, []);
        open.push(other);
        const got: string[] = [];
        other.onBroadcast('authz', (d) => got.push(d));
        await settle(50);
        bus.broadcast('authz', 'from-a');
        await settle();
        assert.deepEqual(got, ['from-a']);
      });

      test('another process consuming the same group resumes where the first stopped, without loss', async () => {
        const bus = await make(['shared']);
        const c = collector();
        const first = await bus.consume('shared', async (batch) => batch.forEach((e) => c.push(e)));
        for (let i = 0; i < 50; i++) await bus.publish(envelope('ch-p', '', `m${i}`));
        await c.until(50);
        await first.stop();
        for (let i = 50; i < 100; i++) await bus.publish(envelope('ch-p', '', `m${i}`));
        const other = await factory.reopen!(bus, ['shared']);
        open.push(other);
        const second = await other.consume('shared', async (batch) => batch.forEach((e) => c.push(e)));
        await c.until(100);
        const ids = new Set(c.got.map((e) => e.payload.toString()));
        assert.equal(ids.size, 100);
        await second.stop();
      });
    }
  });
}
