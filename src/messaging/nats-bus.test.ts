import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { runBusContract } from './bus.contract.js';
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
});
