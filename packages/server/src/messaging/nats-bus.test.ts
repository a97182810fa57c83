// test-database: none
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { envelope, runBusContract } from './bus.contract.js';
import { NatsBus } from './nats-bus.js';
import { natsUrl, serviceAvailable } from '../../test/helpers/services.js';

const available = await serviceAvailable('NATS with JetStream', natsUrl);

describe('NATS JetStream bus', { skip: available === true ? false : available }, () => {
  const streams = new Map<object, { stream: string; subjectPrefix: string }>();
  const created: string[] = [];
  before(() => {});
  after(async () => {
    const nc = await connect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of created) await jsm.streams.delete(s).catch(() => {});
    await nc.close();
  });

  runBusContract('nats', {
    async make(durable) {
      const tag = randomBytes(4).toString('hex');
      const names = { stream: `FW_TEST_${tag}`, subjectPrefix: `fwtest${tag}.msg`, controlPrefix: `fwtest${tag}.ctl` };
      created.push(names.stream);
      const bus = await NatsBus.connect({ url: natsUrl, ...names, durable, retryDelayMs: 100 });
      streams.set(bus, names);
      return bus;
    },
    async reopen(bus, durable) {
      return NatsBus.connect({ url: natsUrl, ...streams.get(bus)!, durable, retryDelayMs: 100 });
    },
  });

  test('what a killed member held is redelivered within seconds of its death, not after a long ack wait', async () => {
    const tag = randomBytes(4).toString('hex');
    const names = { stream: `FW_TEST_${tag}`, subjectPrefix: `fwtest${tag}.msg`, controlPrefix: `fwtest${tag}.ctl` };
    created.push(names.stream);
    // a short ack wait (FLEETWIRE_NATS_ACK_WAIT) so the test need not wait the default 5 s
    const ackWaitMs = 1000;
    const bus = await NatsBus.connect({ url: natsUrl, ...names, durable: ['held'], ackWaitMs });
    try {
      for (let i = 0; i < 5; i++) await (await bus.publish(envelope('ch-k', '', `held-${i}`))).stored();
      // another process takes the batch, never acknowledges it, and is killed
      const member = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
        import { NatsBus } from ${JSON.stringify(new URL('./nats-bus.ts', import.meta.url).pathname)};
        const bus = await NatsBus.connect(${JSON.stringify({ url: natsUrl, ...names, durable: ['held'], ackWaitMs })});
        await bus.consume('held', (batch) => { console.log('took ' + batch.length); return new Promise(() => {}); });
      `], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      member.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const started = Date.now();
      while (!/took \d/.test(out) && member.exitCode === null && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /took \d/, 'the other member took the batch');
      member.kill('SIGKILL');
      await once(member, 'close');
      const killedAt = Date.now();
      const seen = new Set<string>();
      const consumer = await bus.consume('held', async (batch) => void batch.forEach((e) => seen.add(e.id)));
      while (seen.size < 5 && Date.now() - killedAt < 20_000) await new Promise((r) => setTimeout(r, 50));
      await consumer.stop();
      assert.equal(seen.size, 5);
      // the ack wait and a little, not what the member would have held it for with progress acks
      assert.ok(Date.now() - killedAt < ackWaitMs + 3000, `redelivered ${Date.now() - killedAt} ms after the kill (ack wait ${ackWaitMs} ms)`);
    } finally {
      await bus.close();
    }
  });
});
