// test-database: none
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type ParsedPacket } from 'coap-packet';
import { Registry } from 'prom-client';
import { eventually } from '../../test/helpers/eventually.js';
import { createLogger } from '../core/logger.js';
import type { Envelope } from '../messaging/envelope.js';
import { MemoryBus } from '../messaging/memory-bus.js';
import { MessagingMetrics } from '../messaging/metrics.js';
import type { LiveSubscription, SubscribeOptions } from '../messaging/bus.js';
import { Confirmables } from './confirmable.js';
import { CoapMetrics } from './metrics.js';
import type { Peer } from './message.js';
import { Observers } from './observers.js';

/** The in-process bus, but the next subscribe can be made to fail. */
class FlakyBus extends MemoryBus {
  failNext = false;

  override async subscribe(channel: string, filter: string, handler: (env: Envelope) => void, options?: SubscribeOptions): Promise<LiveSubscription> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('bus unavailable');
    }
    return super.subscribe(channel, filter, handler, options);
  }
}

let serial = 0;
const envelope = (channel: string, payload: Buffer): Envelope => ({
  id: `0195f0c8-0000-7000-8000-${(++serial).toString(16).padStart(12, '0')}`,
  org: 'o',
  channel,
  subtopic: '',
  publisher: 'd',
  protocol: 'http',
  contentType: 'application/octet-stream',
  payload,
  receivedAt: 0,
});

const confirmIntervalMs = 1000;

function setup() {
  const bus = new FlakyBus();
  const sent: { packet: ParsedPacket; peer: Peer }[] = [];
  const send = (datagram: Buffer, peer: Peer) => sent.push({ packet: parse(datagram), peer });
  // one try, 5 ms: an unanswered confirmable notification is given up at once
  const confirmables = new Confirmables({ ackTimeoutMs: 5, ackRandomFactor: 1, maxRetransmit: 0 }, send, () => {});
  let now = 0;
  let messageId = 0;
  const observers = new Observers({
    bus,
    log: createLogger('silent'),
    metrics: new MessagingMetrics(new Registry(), bus),
    coapMetrics: new CoapMetrics(undefined, { observers: () => 0, transfers: () => 0 }),
    confirmables,
    send,
    nextMessageId: () => ++messageId,
    now: () => now,
    maxPerAddress: 4,
    confirmIntervalMs,
  });
  let token = 0;
  const register = (peer: Peer, channel: string, uri: string, tok: Buffer = Buffer.of(++token)) => observers.add({ peer, token: tok, channel, filter: '#', uri });
  const publish = (channel: string, bytes: number) => {
    const payload = Buffer.alloc(bytes, serial + 1);
    return bus.publish(envelope(channel, payload)).then(() => payload);
  };
  const advance = (ms: number) => (now += ms);
  const close = async () => {
    observers.close();
    confirmables.close();
    await bus.close();
  };
  return { bus, sent, observers, confirmables, register, publish, advance, close };
}

const block1 = { num: 1, more: false, szx: 6 };
const at = (address: string, port: number): Peer => ({ address, port });

describe('Block2 follow-ups of large notifications', () => {
  let env: ReturnType<typeof setup>;
  afterEach(() => env.close());

  test('a follow-up gets the representation of the observation its own endpoint registered on that URI', async () => {
    env = setup();
    const { observers, register, publish } = env;
    const a = at('10.0.0.1', 1000);
    const b = at('10.0.0.1', 1001); // same address, another endpoint
    await register(a, 'c1', 'u1');
    await register(b, 'c2', 'u1');
    await register(a, 'c2', 'u2');
    // two tokens of one endpoint on one URI: the first registered with a large representation answers
    await register(a, 'c3', 'u3');
    await register(a, 'c1', 'u3');
    const p1 = await publish('c1', 2000);
    const p2 = await publish('c2', 3000);
    assert.deepEqual(observers.block(a, 'u1', block1)?.payload, p1.subarray(1024, 2000));
    assert.deepEqual(observers.block(b, 'u1', block1)?.payload, p2.subarray(1024, 2048));
    assert.deepEqual(observers.block(a, 'u2', { num: 2, more: false, szx: 6 })?.payload, p2.subarray(2048));
    assert.deepEqual(observers.block(a, 'u3', block1)?.payload, p1.subarray(1024, 2000));
    assert.equal(observers.block(at('10.0.0.2', 1000), 'u1', block1), undefined, 'another endpoint has none');
    assert.equal(observers.block(a, 'u9', block1), undefined, 'another URI has none');
    assert.equal(observers.block(a, 'u1', { num: 2, more: false, szx: 6 }), undefined, 'past the end');
    const small = observers.block(a, 'u1', { num: 3, more: false, szx: 4 });
    assert.deepEqual(small?.payload, p1.subarray(768, 1024), 'RFC 7959 §2.4: smaller blocks on request');
  });

  test('a follow-up looks at the observations of its own endpoint and URI only, however many there are', async () => {
    env = setup();
    const { observers, register, publish } = env;
    // every endpoint's address is read through a counter: only a scan of the others reads theirs
    let reads = 0;
    const counted = (port: number): Peer => ({
      get address() {
        reads++;
        return '10.0.0.9';
      },
      port,
    });
    // the per-address limit is the endpoint's to check (canAdd) before add: here all share one address
    const ports = Array.from({ length: 500 }, (_, i) => 20_000 + i);
    for (const port of ports) await register(counted(port), 'big', 'channels/c/messages?auth=s');
    const payload = await publish('big', 1500);
    reads = 0;
    const last = observers.block({ address: '10.0.0.9', port: ports.at(-1)! }, 'channels/c/messages?auth=s', block1);
    assert.deepEqual(last?.payload, payload.subarray(1024));
    assert.equal(reads, 0, 'no other observation was looked at');
  });

  test('the follow-up index forgets an observation on every way it ends', async () => {
    env = setup();
    const { observers, confirmables, sent, bus, register, publish, advance } = env;
    const peer = at('10.0.0.5', 5683);
    const large = async (channel: string, uri: string) => {
      const o = await register(peer, channel, uri);
      await publish(channel, 1500);
      assert.ok(observers.block(peer, uri, block1), `${uri} is served before it ends`);
      return o;
    };
    const notification = (o: { token: Buffer }) => sent.filter((s) => s.packet.token.equals(o.token)).at(-1)!.packet;

    // RFC 7641 §3.6: GET with Observe=1
    const deregistered = await large('c-dereg', 'dereg');
    assert.ok(observers.remove(deregistered.key, 'deregistered'));
    assert.equal(observers.block(peer, 'dereg', block1), undefined);

    // RFC 7641 §4.1: the same token registered again replaces the observation, here on another URI
    const replaced = await large('c-old', 'old');
    await register(peer, 'c-new', 'new', replaced.token);
    assert.equal(observers.block(peer, 'old', block1), undefined);
    assert.equal(observers.block(peer, 'new', block1), undefined, 'no representation yet');
    await publish('c-new', 1500);
    assert.ok(observers.block(peer, 'new', block1));
    observers.remove(replaced.key, 'deregistered');

    // RFC 7641 §3.6: an RST to a non-confirmable notification
    const rstNon = await large('c-rst-non', 'rst-non');
    const non = notification(rstNon);
    assert.equal(non.confirmable, false);
    observers.onReset(peer, non.messageId);
    assert.equal(observers.block(peer, 'rst-non', block1), undefined);

    // an RST to a confirmable one (sent once the confirm interval passed)
    const rstCon = await register(peer, 'c-rst-con', 'rst-con');
    advance(confirmIntervalMs);
    await publish('c-rst-con', 1500);
    const con = notification(rstCon);
    assert.equal(con.confirmable, true);
    assert.ok(observers.block(peer, 'rst-con', block1));
    assert.ok(confirmables.settle(peer, con.messageId, 'reset'));
    assert.equal(observers.block(peer, 'rst-con', block1), undefined);

    // RFC 7252 §4.2: a confirmable notification that is never acknowledged
    const unanswered = await register(peer, 'c-gone', 'gone');
    advance(confirmIntervalMs);
    await publish('c-gone', 1500);
    assert.equal(notification(unanswered).confirmable, true);
    assert.ok(observers.block(peer, 'gone', block1));
    await eventually(() => assert.equal(observers.block(peer, 'gone', block1), undefined), 2000, 5);

    // a registration the bus cannot subscribe is not kept
    bus.failNext = true;
    await assert.rejects(register(peer, 'c-fail', 'fail'));
    assert.equal(observers.size, 0);

    // every path above also gave back the address's slots: four new ones fit (maxPerAddress 4), a fifth does not
    for (let i = 0; i < 4; i++) {
      assert.ok(observers.canAdd(peer.address));
      await large(`c-${i}`, `kept-${i}`);
    }
    assert.equal(observers.canAdd(peer.address), false);
    observers.close();
    for (let i = 0; i < 4; i++) assert.equal(observers.block(peer, `kept-${i}`, block1), undefined, 'shutdown frees them all');
    assert.equal(observers.canAdd(peer.address), true);
  });
});

describe('observations whose access was withdrawn', () => {
  let env: ReturnType<typeof setup>;
  afterEach(() => env.close());

  test('forbid sends a last confirmable 4.03 without Observe to the token, and the observation gets nothing after it', async () => {
    env = setup();
    const { observers, register, publish, sent } = env;
    const peer = at('10.0.0.3', 5000);
    const kept = await register(peer, 'c', 'u1');
    const cut = await register(peer, 'c', 'u2');
    assert.ok(observers.forbid(cut.key, 'message.not_connected: access withdrawn'));
    const last = sent.at(-1)!.packet;
    assert.equal(last.code, '4.03');
    assert.ok(last.confirmable);
    assert.ok(last.token.equals(cut.token));
    assert.equal(last.options.find((o) => o.name === 'Observe'), undefined, 'RFC 7641 §4.2: an error ends the observation and carries no Observe');
    assert.equal(last.payload.toString(), 'message.not_connected: access withdrawn');
    assert.equal(observers.size, 1);
    const before = sent.length;
    await publish('c', 10);
    await eventually(() => assert.equal(sent.length, before + 1));
    assert.ok(sent.at(-1)!.packet.token.equals(kept.token), 'only the other observation is notified');
    assert.equal(observers.forbid(cut.key, 'again'), false);
  });
});
