import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import coap from 'coap';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import type { Envelope } from '../messaging/envelope.js';
import { listenCoap, type CoapListener } from './index.js';
import { encodeBlock, parseBlock } from './block.js';
import { option, readUint, uint } from './message.js';

interface Send {
  code?: string;
  confirmable?: boolean;
  messageId?: number;
  token?: Buffer;
  path?: string;
  query?: string[];
  options?: { name: number; value: Buffer }[];
  payload?: Buffer | string;
}

/** A CoAP client that writes exactly the datagrams a test asks for and keeps every one it receives. */
class RawClient {
  readonly socket = dgram.createSocket('udp4');
  readonly received: ParsedPacket[] = [];
  private mid = 1;
  /** Answer confirmable notifications with ACK (a live client) or stay silent (one that went away). */
  acknowledge = true;

  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      const p = parse(m);
      this.received.push(p);
      if (p.confirmable && this.acknowledge) this.raw(generate({ code: '0.00', messageId: p.messageId, ack: true }));
    });
  }

  async open(): Promise<this> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this;
  }

  raw(datagram: Buffer): void {
    this.socket.send(datagram, this.port, '127.0.0.1');
  }

  datagram(s: Send): { datagram: Buffer; messageId: number; token: Buffer } {
    const messageId = s.messageId ?? this.mid++;
    const token = s.token ?? randomBytes(4);
    const options: { name: string; value: Buffer }[] = [...(s.path ?? '').split('/').filter(Boolean).map((seg) => ({ name: String(option.uriPath), value: Buffer.from(seg) }))];
    for (const q of s.query ?? []) options.push({ name: String(option.uriQuery), value: Buffer.from(q) });
    for (const o of s.options ?? []) options.push({ name: String(o.name), value: o.value });
    const payload = typeof s.payload === 'string' ? Buffer.from(s.payload) : (s.payload ?? Buffer.alloc(0));
    const datagram = generate({ code: s.code ?? 'POST', confirmable: s.confirmable ?? true, messageId, token, options, payload }, 70_000);
    return { datagram, messageId, token };
  }

  /** Sends a request and resolves with the reply that carries its token. */
  async request(s: Send): Promise<ParsedPacket> {
    const { datagram, token } = this.datagram(s);
    const from = this.received.length;
    this.raw(datagram);
    return this.next((p) => p.token.equals(token) && !p.code.startsWith('0.'), from);
  }

  next(match: (p: ParsedPacket) => boolean, from = 0, ms = 3000): Promise<ParsedPacket> {
    return eventually(() => {
      const p = this.received.slice(from).find(match);
      assert.ok(p, 'no matching datagram yet');
      return p;
    }, ms, 5);
  }

  close(): void {
    this.socket.close();
  }
}

const senml = (n: string, v: number) => JSON.stringify([{ n, v }]);
const cf = (n: number) => ({ name: option.contentFormat, value: uint(n) });
const observe = (n: number) => ({ name: option.observe, value: uint(n) });
const opt = (p: ParsedPacket, name: string) => p.options.find((o) => o.name === name)?.value;

describe('CoAP adapter', () => {
  let t: TestPlatform;
  let coapServer: CoapListener;
  let port: number;
  let channel: string;
  let token: string;
  const dev = {} as Record<'both' | 'pub' | 'sub' | 'none', { id: string; secret: string }>;
  const clients: RawClient[] = [];
  const seen: Envelope[] = [];
  const client = async () => {
    const c = await new RawClient(port).open();
    clients.push(c);
    return c;
  };
  const base = () => `channels/${channel}/messages`;

  before(async () => {
    t = await startTestPlatform({ coapPort: 0, messageMaxSize: 128 * 1024, coapMaxObserversPerAddress: 3, coapMaxTransfersPerAddress: 2 });
    coapServer = await listenCoap(t.platform, { ackTimeoutMs: 40, maxRetransmit: 2, confirmIntervalMs: 200 });
    port = coapServer.address.port;
    const owner = await t.user('coap-owner@example.com');
    token = owner.token;
    const org = (await t.request('POST', '/orgs', { token, body: { name: 'coap' } })).json().id;
    for (const name of ['both', 'pub', 'sub', 'none'] as const) dev[name] = (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name } })).json();
    // opaque by default: most requests here carry no Content-Format and are about CoAP, not payloads
    channel = (await t.request('POST', `/orgs/${org}/channels`, { token, body: { name: 'c', content_type: 'application/octet-stream' } })).json().id;
    const connect = (d: { id: string }, types: string[]) => t.request('POST', `/orgs/${org}/connections`, { token, body: { device_ids: [d.id], channel_ids: [channel], types } });
    await connect(dev.both, ['publish', 'subscribe']);
    await connect(dev.pub, ['publish']);
    await connect(dev.sub, ['subscribe']);
    await t.platform.bus.subscribe(channel, '#', (env) => seen.push(env));
  });
  after(async () => {
    for (const c of clients) c.close();
    await coapServer.close();
    await t.close();
  });

  test('POST publishes with the Content-Format as content type, answers 2.04 and the message is stored', async () => {
    const c = await client();
    const reply = await c.request({ path: `${base()}/rooms/1`, query: [`auth=${dev.pub.secret}`], options: [cf(110)], payload: senml('coap-temp', 21.5) });
    assert.equal(reply.code, '2.04');
    assert.ok(reply.ack, 'piggybacked on the ACK of the confirmable request');
    const env = await eventually(() => seen.find((e) => e.payload.toString() === senml('coap-temp', 21.5))!);
    assert.deepEqual([env.protocol, env.contentType, env.subtopic, env.publisher], ['coap', 'application/senml+json', 'rooms/1', dev.pub.id]);
    await eventually(async () => {
      const r = (await t.request('GET', `/channels/${channel}/messages?total=true&name=coap-temp`, { token })).json();
      assert.equal(r.total, 1);
      assert.equal(r.messages[0].value, 21.5);
      assert.equal(r.messages[0].protocol, 'coap');
    });
  });

  test("a non-confirmable POST gets a non-confirmable 2.04; JSON, CBOR, text map to content types, no Content-Format to the channel's", async () => {
    const c = await client();
    const cases: [number | undefined, string][] = [[50, 'application/json'], [60, 'application/cbor'], [0, 'text/plain; charset=utf-8'], [42, 'application/octet-stream'], [undefined, 'application/octet-stream']];
    for (const [format, type] of cases) {
      const body = format === 50 ? '{"t":1}' : `body-${format}`;
      const reply = await c.request({ confirmable: false, path: `${base()}/formats`, query: [`auth=${dev.pub.secret}`], options: format === undefined ? [] : [cf(format)], payload: body });
      assert.equal(reply.code, '2.04');
      assert.equal(reply.confirmable || reply.ack, false);
      const env = await eventually(() => seen.find((e) => e.subtopic === 'formats' && e.payload.toString() === body)!);
      assert.equal(env.contentType, type);
    }
  });

  test('each refusal has its response code and a diagnostic payload naming the error', async () => {
    const c = await client();
    const pub = (over: Partial<Send>) => c.request({ path: base(), query: [`auth=${dev.pub.secret}`], options: [cf(110)], payload: senml('x', 1), ...over });
    const cases: [string, Promise<ParsedPacket>, string][] = [
      ['4.00', pub({ payload: '[{"n":"x","v":"not a number"}]' }), 'message.invalid_payload'],
      ['4.00', pub({ path: `${base()}/a/+` }), 'message.invalid_subtopic'],
      ['4.01', pub({ query: [] }), 'auth.required'],
      ['4.01', pub({ query: ['auth=wrong'] }), 'auth.invalid_credentials'],
      ['4.03', pub({ query: [`auth=${dev.sub.secret}`] }), 'message.not_connected'],
      ['4.03', pub({ query: [`auth=${dev.none.secret}`] }), 'message.not_connected'],
      ['4.04', pub({ path: 'channels/0195f0c8-0000-7000-8000-00000000abcd/messages' }), 'channel.not_found'],
      ['4.04', pub({ path: 'things/x' }), 'route.not_found'],
      ['4.15', pub({ options: [cf(9999)] }), 'message.unsupported_content_type'],
      ['4.15', pub({ options: [cf(310)] }), 'message.unsupported_content_type'],
      ['4.13', pub({ options: [cf(42), { name: option.block1, value: encodeBlock({ num: 0, more: true, szx: 6 }) }, { name: option.size1, value: uint(1024 * 1024) }], payload: Buffer.alloc(1024) }), 'message.too_large'],
      ['4.02', pub({ options: [cf(110), { name: 65001, value: Buffer.from('x') }] }), 'coap.bad_option'],
      ['4.05', pub({ code: 'PUT' }), 'coap.method_not_allowed'],
      ['4.00', c.request({ code: 'GET', path: base(), query: [`auth=${dev.sub.secret}`] }), 'coap.observe_required'],
    ];
    for (const [code, reply, reason] of cases) {
      const r = await reply;
      assert.equal(r.code, code, `${reason}: ${r.payload.toString()}`);
      assert.match(r.payload.toString(), new RegExp(`^${reason.replace('.', '\\.')}: `));
    }
    const tooLarge = await cases[10]![1];
    assert.equal(readUint(opt(tooLarge, 'Size1')!), 128 * 1024, 'RFC 7959 §2.9.3: 4.13 says how much the server takes');
    const metrics = (await t.request('GET', '/metrics')).body;
    assert.match(metrics, /fleetwire_messages_rejected_total\{protocol="coap",code="auth.invalid_credentials"\} 1/);
  });

  test('a 64 KiB publish arrives block-wise (RFC 7959) from node-coap and is published whole', async () => {
    const payload = randomBytes(64 * 1024);
    const res = await new Promise<coap.IncomingMessage>((resolve, reject) => {
      const req = coap.request({ hostname: '127.0.0.1', port, method: 'POST', pathname: `/${base()}/big`, query: `auth=${dev.pub.secret}`, agent: new coap.Agent({ type: 'udp4' }) });
      req.setOption('Content-Format', 'application/octet-stream');
      req.setOption('Block1', Buffer.of(0x06)); // 1024-byte blocks
      req.on('response', resolve);
      req.on('error', reject);
      req.end(payload);
    });
    assert.equal(res.code, '2.04');
    const env = await eventually(() => seen.find((e) => e.subtopic === 'big')!);
    assert.equal(env.payload.length, payload.length);
    assert.ok(env.payload.equals(payload));
    assert.equal(coapServer.endpoint.transfers.size, 0, 'the reassembly state is freed');
  });

  test('blocks out of order are refused with 4.08; uploads per address are bounded', async () => {
    const c = await client();
    const block = (num: number, more: boolean, over: Partial<Send> = {}) => c.request({ path: `${base()}/blocks`, query: [`auth=${dev.pub.secret}`], options: [cf(42), { name: option.block1, value: encodeBlock({ num, more, szx: 2 }) }], payload: Buffer.alloc(64, num), ...over });
    const first = await block(0, true);
    assert.equal(first.code, '2.31');
    assert.deepEqual(parseBlock(opt(first, 'Block1')!), { num: 0, more: true, szx: 2 });
    const skipped = await block(2, false);
    assert.equal(skipped.code, '4.08');
    // two uploads per address at most (coapMaxTransfersPerAddress)
    const begin = (sub: string) => c.request({ path: `${base()}/${sub}`, query: [`auth=${dev.pub.secret}`], options: [{ name: option.block1, value: encodeBlock({ num: 0, more: true, szx: 2 }) }], payload: Buffer.alloc(64) });
    assert.equal((await begin('u1')).code, '2.31');
    assert.equal((await begin('u2')).code, '2.31');
    const third = await begin('u3');
    assert.equal(third.code, '5.03');
    assert.match(third.payload.toString(), /^coap\.too_many_transfers: /);
    assert.equal(readUint(opt(third, 'Max-Age')!), 30);
    // an unauthorised upload holds no state
    const refused = await c.request({ path: `${base()}/u4`, query: ['auth=wrong'], options: [{ name: option.block1, value: encodeBlock({ num: 0, more: true, szx: 2 }) }], payload: Buffer.alloc(64) });
    assert.equal(refused.code, '5.03', 'the per-address limit is checked first');
    coapServer.endpoint.transfers.clear();
    const unauthorised = await c.request({ path: `${base()}/u4`, query: ['auth=wrong'], options: [{ name: option.block1, value: encodeBlock({ num: 0, more: true, szx: 2 }) }], payload: Buffer.alloc(64) });
    assert.equal(unauthorised.code, '4.01');
    assert.equal(coapServer.endpoint.transfers.size, 0);
  });

  test('GET with Observe registers: 2.05 with Observe, then a notification per matching message until Observe=1 deregisters', async () => {
    const c = await client();
    const all = await c.request({ code: 'GET', path: base(), query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(all.code, '2.05');
    assert.ok(opt(all, 'Observe'), 'the registration response carries Observe');
    const plus = await c.request({ code: 'GET', path: `${base()}/obs/+/temp`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(plus.code, '2.05');
    const p = await client();
    for (const [sub, v] of [['obs/1/temp', 1], ['obs/2/hum', 2], ['obs/3/temp', 3]] as const) {
      assert.equal((await p.request({ path: `${base()}/${sub}`, query: [`auth=${dev.pub.secret}`], options: [cf(110)], payload: senml('o', v) })).code, '2.04');
    }
    const notes = (tok: Buffer) => c.received.filter((r) => r.token.equals(tok) && r.payload.length > 0);
    await eventually(() => assert.equal(notes(all.token).length, 3));
    await eventually(() => assert.equal(notes(plus.token).length, 2));
    assert.deepEqual(notes(plus.token).map((n) => n.payload.toString()), [senml('o', 1), senml('o', 3)]);
    const seqs = notes(all.token).map((n) => readUint(opt(n, 'Observe')!));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'Observe values increase (RFC 7641 §4.4)');
    assert.equal(readUint(opt(notes(all.token)[0]!, 'Content-Format')!), 110);
    // deregistration with the same token
    const dereg = await c.request({ code: 'GET', token: all.token, path: base(), query: [`auth=${dev.sub.secret}`], options: [observe(1)] });
    assert.equal(dereg.code, '2.05');
    assert.equal(opt(dereg, 'Observe'), undefined);
    await p.request({ path: `${base()}/obs/4/temp`, query: [`auth=${dev.pub.secret}`], options: [cf(110)], payload: senml('o', 4) });
    await eventually(() => assert.equal(notes(plus.token).length, 3));
    assert.equal(notes(all.token).length, 3, 'no notification after deregistration');
    // refusals of observe
    assert.equal((await c.request({ code: 'GET', path: base(), query: [`auth=${dev.pub.secret}`], options: [observe(0)] })).code, '4.03');
    assert.equal((await c.request({ code: 'GET', path: base(), query: [], options: [observe(0)] })).code, '4.01');
    assert.equal((await c.request({ code: 'GET', path: `${base()}/a/#/b`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] })).code, '4.00');
    c.acknowledge = false;
    await c.request({ code: 'GET', token: plus.token, path: `${base()}/obs/+/temp`, query: [`auth=${dev.sub.secret}`], options: [observe(1)] });
  });

  test('an RST in answer to a notification ends the observation (RFC 7641 §3.6)', async () => {
    const c = await client();
    const reg = await c.request({ code: 'GET', path: `${base()}/rst`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(reg.code, '2.05');
    const before = coapServer.endpoint.observers.size;
    const p = await client();
    await p.request({ path: `${base()}/rst`, query: [`auth=${dev.pub.secret}`], payload: 'one' });
    const note = await c.next((r) => r.token.equals(reg.token) && r.payload.toString() === 'one');
    c.raw(generate({ code: '0.00', messageId: note.messageId, reset: true }));
    await eventually(() => assert.equal(coapServer.endpoint.observers.size, before - 1));
    await p.request({ path: `${base()}/rst`, query: [`auth=${dev.pub.secret}`], payload: 'two' });
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!c.received.some((r) => r.payload.toString() === 'two'));
  });

  test('an observer that stops answering is freed after its confirmable message goes unanswered; one that answers stays', async () => {
    const live = await client();
    const gone = await client();
    gone.acknowledge = false;
    const regLive = await live.request({ code: 'GET', path: `${base()}/alive`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    const regGone = await gone.request({ code: 'GET', path: `${base()}/alive`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(regLive.code, '2.05');
    assert.equal(regGone.code, '2.05');
    const n = coapServer.endpoint.observers.size;
    // past the confirm interval, the quiet channel gets pings: confirmable, so they are retransmitted until answered
    t.clock.advance(1000);
    await eventually(() => assert.equal(coapServer.endpoint.observers.size, n - 1), 5000);
    assert.ok(gone.received.filter((r) => r.confirmable && r.code === '0.00').length >= 3, 'the ping was sent and retransmitted (MAX_RETRANSMIT 2)');
    // the live observer still receives
    const p = await client();
    await p.request({ path: `${base()}/alive`, query: [`auth=${dev.pub.secret}`], payload: 'still here' });
    await live.next((r) => r.token.equals(regLive.token) && r.payload.toString() === 'still here');
    const metrics = (await t.request('GET', '/metrics')).body;
    assert.match(metrics, /fleetwire_coap_observers_freed_total\{reason="unanswered"\} 1/);
    assert.match(metrics, /fleetwire_coap_retransmissions_total [1-9]/);
    live.acknowledge = false;
    await live.request({ code: 'GET', token: regLive.token, path: `${base()}/alive`, query: [`auth=${dev.sub.secret}`], options: [observe(1)] });
  });

  test('observations per address are bounded: one more gets 5.03 with Max-Age', async () => {
    const c = await client();
    const regs: ParsedPacket[] = [];
    for (let i = 0; i < 3; i++) regs.push(await c.request({ code: 'GET', path: `${base()}/limit/${i}`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] }));
    const held = coapServer.endpoint.observers.size;
    assert.ok(held >= 3);
    // the limit counts every observer of 127.0.0.1; the ones of earlier tests that remain count too
    const over = await c.request({ code: 'GET', path: `${base()}/limit/x`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(over.code, '5.03');
    assert.match(over.payload.toString(), /^coap\.too_many_observers: /);
    // re-registering with the same token replaces, and is not refused
    const again = await c.request({ code: 'GET', token: regs[0]!.token, path: `${base()}/limit/0`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    assert.equal(again.code, '2.05');
    assert.equal(coapServer.endpoint.observers.size, held);
    for (const r of regs) await c.request({ code: 'GET', token: r.token, path: `${base()}/limit/x`, query: [`auth=${dev.sub.secret}`], options: [observe(1)] });
  });

  test('a duplicate request is answered from memory and published once', async () => {
    const c = await client();
    const con = c.datagram({ path: `${base()}/dup`, query: [`auth=${dev.pub.secret}`], payload: 'once' });
    c.raw(con.datagram);
    c.raw(con.datagram);
    await eventually(() => assert.equal(c.received.filter((r) => r.messageId === con.messageId).length, 2), 3000);
    const [a, b] = c.received.filter((r) => r.messageId === con.messageId);
    assert.equal(a!.code, '2.04');
    assert.deepEqual(b, a, 'the retransmission gets the same reply');
    const non = c.datagram({ confirmable: false, path: `${base()}/dup`, query: [`auth=${dev.pub.secret}`], payload: 'non-once' });
    c.raw(non.datagram);
    c.raw(non.datagram);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.filter((e) => e.subtopic === 'dup' && e.payload.toString() === 'once').length, 1);
    assert.equal(seen.filter((e) => e.subtopic === 'dup' && e.payload.toString() === 'non-once').length, 1);
    assert.match((await t.request('GET', '/metrics')).body, /fleetwire_coap_duplicates_total [2-9]/);
  });

  test('malformed datagrams are refused without harm, confirmable ones with RST; a ping gets RST', async () => {
    const c = await client();
    const garbage = [
      Buffer.alloc(0),
      Buffer.of(0x40),
      Buffer.of(0x80, 0x01, 0x00, 0x01), // version 2
      Buffer.of(0x49, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9), // token length 9
      Buffer.of(0x40, 0x00, 0x12, 0x35, 0xff), // empty message with a payload marker
      Buffer.of(0x40, 0x02, 0x12, 0x36, 0xf0), // option delta 15
      Buffer.of(0x40, 0x02, 0x12, 0x37, 0xb0 | 13), // option length announced, missing
      randomBytes(512),
    ];
    for (const g of garbage) c.raw(g);
    c.raw(generate({ code: '0.00', messageId: 0x4242, confirmable: true }));
    const rst = await c.next((r) => r.reset && r.messageId === 0x4242);
    assert.equal(rst.code, '0.00');
    await c.next((r) => r.reset && r.messageId === 0x1236);
    for (let i = 0; i < 200; i++) c.raw(randomBytes(1 + (i % 64)));
    const ok = await c.request({ path: `${base()}/after-garbage`, query: [`auth=${dev.pub.secret}`], payload: 'fine' });
    assert.equal(ok.code, '2.04');
    assert.match((await t.request('GET', '/metrics')).body, /fleetwire_coap_datagrams_refused_total\{reason="malformed"\} [1-9]/);
  });

  test('a notification larger than a block carries Block2 and the rest is fetched block by block (RFC 7959 §2.6)', async () => {
    const c = await client();
    const reg = await c.request({ code: 'GET', path: `${base()}/large`, query: [`auth=${dev.sub.secret}`], options: [observe(0)] });
    const payload = randomBytes(2500);
    const p = await client();
    await p.request({ path: `${base()}/large`, query: [`auth=${dev.pub.secret}`], options: [cf(42), { name: option.block1, value: encodeBlock({ num: 0, more: true, szx: 6 }) }], payload: payload.subarray(0, 1024) });
    await p.request({ path: `${base()}/large`, query: [`auth=${dev.pub.secret}`], options: [cf(42), { name: option.block1, value: encodeBlock({ num: 1, more: true, szx: 6 }) }], payload: payload.subarray(1024, 2048) });
    await p.request({ path: `${base()}/large`, query: [`auth=${dev.pub.secret}`], options: [cf(42), { name: option.block1, value: encodeBlock({ num: 2, more: false, szx: 6 }) }], payload: payload.subarray(2048) });
    const first = await c.next((r) => r.token.equals(reg.token) && r.payload.length > 0);
    assert.deepEqual(parseBlock(opt(first, 'Block2')!), { num: 0, more: true, szx: 6 });
    assert.equal(readUint(opt(first, 'Size2')!), 2500);
    const parts = [first.payload];
    for (let num = 1; ; num++) {
      const r = await c.request({ code: 'GET', path: `${base()}/large`, query: [`auth=${dev.sub.secret}`], options: [{ name: option.block2, value: encodeBlock({ num, more: false, szx: 6 }) }] });
      assert.equal(r.code, '2.05');
      assert.ok(opt(r, 'ETag')!.equals(opt(first, 'ETag')!));
      parts.push(r.payload);
      if (!parseBlock(opt(r, 'Block2')!)!.more) break;
    }
    assert.ok(Buffer.concat(parts).equals(payload));
    c.acknowledge = false;
    await c.request({ code: 'GET', token: reg.token, path: `${base()}/large`, query: [`auth=${dev.sub.secret}`], options: [observe(1)] });
    // the representation went with the observation
    const after = await c.request({ code: 'GET', path: `${base()}/large`, query: [`auth=${dev.sub.secret}`], options: [{ name: option.block2, value: encodeBlock({ num: 1, more: false, szx: 6 }) }] });
    assert.equal(after.code, '4.04');
    assert.match(after.payload.toString(), /^coap\.no_representation: /);
  });

  test('Uri-Path segments and Uri-Query arguments are read in order; auth may be any argument', async () => {
    const c = await client();
    const reply = await c.request({ path: `${base()}/q/a/b`, query: ['x=1', `auth=${dev.pub.secret}`, 'y=2'], payload: 'ordered' });
    assert.equal(reply.code, '2.04');
    const env = await eventually(() => seen.find((e) => e.payload.toString() === 'ordered')!);
    assert.equal(env.subtopic, 'q/a/b');
  });
});
