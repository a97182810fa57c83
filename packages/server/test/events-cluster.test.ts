// Fleet events across nodes: two platforms on one database, on one bus (in-process, and NATS when
// one answers): a WebSocket on node B follows what a user changes through node A.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startTestPlatform } from './helpers/platform.js';
import { eventually } from './helpers/eventually.js';
import { natsUrl, serviceAvailable } from './helpers/services.js';
import { MemoryBus } from '../src/messaging/memory-bus.js';
import { NatsBus } from '../src/messaging/nats-bus.js';
import type { Bus } from '../src/messaging/bus.js';
import type { FleetEvent } from '../src/events/index.js';

const nats = await serviceAvailable('NATS with JetStream', natsUrl);
const streams: string[] = [];

after(async () => {
  if (streams.length === 0) return;
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  for (const s of streams) await jsm.streams.delete(s).catch(() => {});
  await nc.close();
});

async function natsBuses(): Promise<[Bus, Bus]> {
  const tag = randomBytes(4).toString('hex');
  const names = { stream: `FW_TEST_${tag}`, subjectPrefix: `fwtest${tag}.msg`, controlPrefix: `fwtest${tag}.ctl` };
  streams.push(names.stream);
  const durable = ['writer'];
  return [await NatsBus.connect({ url: natsUrl, ...names, durable }), await NatsBus.connect({ url: natsUrl, ...names, durable })];
}

for (const [kind, buses, skip] of [
  ['in-process', async (): Promise<[Bus, Bus]> => {
    const bus = new MemoryBus({ durable: ['writer'] });
    return [bus, bus];
  }, false],
  ['NATS', natsBuses, nats === true ? false : nats],
] as const) {
  describe(`fleet events on two nodes (${kind} bus)`, { skip }, () => {
    test('a WebSocket on node B receives the events of changes made through node A, and B lists them', async () => {
      const [busA, busB] = await buses();
      const a = await startTestPlatform({}, { bus: busA });
      const b = await startTestPlatform({}, { bus: busB, writer: false }, { sharing: a });
      const sockets: WebSocket[] = [];
      try {
        await b.app.listen({ host: '127.0.0.1', port: 0 });
        const owner = await a.user('cluster-events@example.com');
        const org = (await a.request('POST', '/orgs', { token: owner.token, body: { name: 'two nodes' } })).json().id as string;
        const ws = new WebSocket(`ws://127.0.0.1:${(b.app.server.address() as AddressInfo).port}/ws/orgs/${org}/events?type=device.*`, { headers: { authorization: `Bearer ${owner.token}` } });
        sockets.push(ws);
        const received: FleetEvent[] = [];
        ws.on('message', (m) => received.push(JSON.parse(m.toString()) as FleetEvent));
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        const device = (await a.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name: 'on A' } })).json().id as string;
        await a.request('POST', `/orgs/${org}/devices/${device}/disable`, { token: owner.token });
        await eventually(() => assert.deepEqual(received.map((e) => `${e.type} ${e.subject.id}`), [`device.created ${device}`, `device.disabled ${device}`]));
        const listed = await eventually(async () => {
          const res = await b.request('GET', `/orgs/${org}/events?device=${device}`, { token: owner.token });
          assert.equal(res.json().total, 2);
          return res.json();
        });
        assert.deepEqual(listed.events.map((e: FleetEvent) => e.id), [...received].reverse().map((e) => e.id));
      } finally {
        for (const s of sockets) s.terminate();
        await b.close();
        await a.close();
        await busA.close();
        if (busB !== busA) await busB.close();
      }
    });
  });
}
