// Bad input, every listener: one `fleetwire start` process (as an operator starts it) gets a few
// seconds of seeded random and mutated input on each protocol: MQTT (TCP and WebSocket), CoAP,
// WebSocket and HTTP publish plus the readers API. The product rule: bad input gets the protocol's
// proper refusal and loses nothing; the process keeps running, keeps serving everyone else (an MQTT
// and a WebSocket subscriber connected through the whole storm), stores nothing corrupt, logs
// nothing at error level, and still stops cleanly on SIGTERM.
//
// Seeded: a failure names its seed and input, and replays with
//   FLEETWIRE_FUZZ_SEED=<seed> node scripts/test.mjs --db sqlite test/listeners-fuzz.test.ts
// Each protocol draws from its own generator, input by input, so the sequence of inputs of a seed is
// the same on every machine; a slow machine may only reach fewer of them in the time given.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { encode as cborEncode } from 'cbor-x';
import { generate as coapGenerate, parse as coapParse, type ParsedPacket } from 'coap-packet';
import type { MqttClient } from 'mqtt';
import mqttPacket, { type IConnectPacket, type Packet as MqttPacket } from 'mqtt-packet';
import WebSocket from 'ws';
import { announcedPort, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, stopChild, type CliFleet, type LogLine, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';
import { mqttClient, type TestClient } from './helpers/mqtt.js';
import { seededRandom } from './helpers/random.js';
import { option, uint } from '../src/coap/message.js';

const seed = process.env.FLEETWIRE_FUZZ_SEED ? Number(process.env.FLEETWIRE_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32);
const replay = `seed ${seed}, replay with FLEETWIRE_FUZZ_SEED=${seed}`;

/** How much each protocol gets: at most `inputs`, for at most `ms`, `concurrency` at a time. */
const budget = {
  mqtt: { inputs: 400, concurrency: 8, ms: 3000 },
  coap: { inputs: 800, concurrency: 8, ms: 3000 },
  ws: { inputs: 300, concurrency: 6, ms: 3000 },
  http: { inputs: 600, concurrency: 8, ms: 3000 },
};
/** An answer the protocol owes (CONNACK, a CoAP ACK, an HTTP response, an upgrade answer) that takes longer is a hang. */
const answerWithinMs = 5000;
/** Largest payload the platform takes (FLEETWIRE_MESSAGE_MAX_SIZE default); oversize inputs go past it. */
const maxPayload = 256 * 1024;

/** Random choices from one seeded generator (mulberry32, test/helpers/random.ts). */
class Fuzz {
  private readonly next: () => number;
  constructor(seedValue: number) {
    this.next = seededRandom(seedValue);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** Text of up to `max` characters: ASCII, two-, three- and four-byte characters, controls, lone surrogates. */
  text(max: number): string {
    let s = '';
    for (let n = this.int(max + 1); n > 0; n--) {
      const k = this.int(20);
      s += k < 12 ? String.fromCharCode(32 + this.int(95)) : k < 17 ? this.pick(unusual) : String.fromCharCode(this.int(0x10000));
    }
    return s;
  }
  /** Printable ASCII only: what an HTTP header or a URL can carry as is. */
  ascii(max: number): string {
    let s = '';
    for (let n = this.int(max + 1); n > 0; n--) s += String.fromCharCode(33 + this.int(94));
    return s;
  }
}

const unusual = ['é', 'ü', 'ß', 'ж', '€', '中', '…', '😀', '\u0000', '\u001f', '\u007f', '\ud800', '\udfff', '\ufffd', '\uffff', '"', '\\', '/', '+', '#', '$', '%'];

/** Strings that must turn into invalid UTF-8 on the wire hold this marker; `withBadUtf8` swaps its bytes. */
const badUtf8 = '\u0007\u0007\u0007';
function withBadUtf8(buf: Buffer): Buffer {
  for (let i = buf.indexOf(badUtf8); i >= 0; i = buf.indexOf(badUtf8, i + 3)) buf.set([0xc3, 0x28, 0xff], i);
  return buf;
}

/** Percent-encoding of any string: a lone surrogate (which encodeURIComponent refuses) becomes U+FFFD. */
function encode(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
}

function hex(buf: Buffer, max = 96): string {
  return buf.length <= max ? buf.toString('hex') : `${buf.subarray(0, max).toString('hex')}… (${buf.length} bytes)`;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` or `ms` pass; whether `done()` came true. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await pause(5);
  }
  return true;
}

/** Byte mutations: bit flips, truncation, overwritten and inserted bytes, a random length byte, garbage appended. */
function mutate(f: Fuzz, input: Buffer): Buffer {
  let b = Buffer.from(input);
  for (let n = 1 + f.int(3); n > 0; n--) {
    switch (f.int(6)) {
      case 0:
        if (b.length) for (let k = 1 + f.int(4); k > 0; k--) b[f.int(b.length)]! ^= 1 << f.int(8);
        break;
      case 1:
        b = b.subarray(0, f.int(b.length + 1));
        break;
      case 2:
        if (b.length) b[f.int(b.length)] = f.pick([0, 0x7f, 0x80, 0xff, f.int(256)]);
        break;
      case 3: {
        const at = f.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), f.bytes(1 + f.int(8)), b.subarray(at)]);
        break;
      }
      case 4:
        // the length bytes (MQTT remaining length, CoAP token length and option deltas) sit near the start
        if (b.length > 1) b[1 + f.int(Math.min(4, b.length - 1))] = f.pick([0x00, 0x7f, 0x80, 0xff, f.int(256)]);
        break;
      default:
        b = Buffer.concat([b, f.bytes(1 + f.int(40))]);
    }
  }
  return b;
}

// ---- payloads, subtopics, content types: shared by every protocol ----

const numbers = [0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, 5e-324, Number.POSITIVE_INFINITY, Number.NaN];

function randomJson(f: Fuzz, depth = 0): unknown {
  switch (f.int(depth > 3 ? 4 : 7)) {
    case 0:
      return null;
    case 1:
      return f.chance(0.5);
    case 2:
      return f.chance(0.5) ? f.pick(numbers) : f.int(2 ** 31) - 2 ** 30;
    case 3:
      return f.text(20);
    case 4:
    case 5: {
      const o: Record<string, unknown> = {};
      for (let n = f.int(5); n > 0; n--) o[f.chance(0.6) ? f.pick(['bn', 'bt', 'bu', 'bv', 'n', 'u', 'v', 'vs', 'vb', 'vd', 's', 't', 'ut', 'bver']) : f.text(6)] = randomJson(f, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: f.int(5) }, () => randomJson(f, depth + 1));
  }
}

/** A SenML pack that is well formed (names and values of every kind). */
function senmlPack(f: Fuzz): unknown[] {
  return Array.from({ length: 1 + f.int(3) }, (_, k) => {
    const r: Record<string, unknown> = { n: `fz:${k}`, ...(k === 0 ? { bn: f.pick(['urn:dev:1:', 'fuzz/', '']) } : {}) };
    const which = f.int(4);
    if (which === 0) r.v = f.int(1000) / 10;
    else if (which === 1) r.vs = f.text(10).replace(/[\ud800-\udfff]/g, '');
    else if (which === 2) r.vb = f.chance(0.5);
    else r.vd = f.bytes(f.int(9)).toString('base64url');
    if (f.chance(0.3)) r.u = f.pick(['Cel', '%RH', 'm']);
    return r;
  });
}

/** SenML that must be refused, with non-ASCII text in what the refusal quotes (the close-reason bug of commit 6fd6d59). */
function badSenml(f: Fuzz): string {
  const long = f.pick(['é', 'ü', '中', '😀', 'ж']).repeat(20 + f.int(200));
  return f.pick([
    `[{"n":"${long}","v":"${long}"}]`,
    `[{"bn":"${long}","bt":"${long}"}]`,
    `[{"n":"${long}","vs":1}]`,
    `{"n":"${long}"}`,
    `[{"n":"${long}",`,
    `[{"n":"a","v":1e400,"u":"${long}"}]`,
    `[{"n":"${long} with space","v":1}]`,
    `[{"bver":99,"n":"${long}"}]`,
    `["${long}"]`,
  ]);
}

const contentTypes = ['application/senml+json', 'application/senml+cbor', 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8', 'application/senml+json; charset=utf-8', 'APPLICATION/SENML+JSON', 'application/senml+xml', 'application/sensml+json', 'application/cbor', 'application/senml+', '*/*', ';', ''];

interface Payload {
  contentType: string;
  body: Buffer;
}

function randomPayload(f: Fuzz, opts: { oversize?: boolean } = {}): Payload {
  const contentType = f.chance(0.85) ? f.pick(contentTypes) : f.ascii(30);
  if (opts.oversize) return { contentType, body: Buffer.alloc(maxPayload + 1 + f.int(64 * 1024), 0x5b) };
  switch (f.int(9)) {
    case 0:
    case 1:
      return { contentType: f.chance(0.7) ? 'application/senml+json' : contentType, body: Buffer.from(JSON.stringify(senmlPack(f))) };
    case 2:
    case 3:
      return { contentType: f.chance(0.7) ? 'application/senml+json' : contentType, body: Buffer.from(badSenml(f)) };
    case 4:
      return { contentType, body: Buffer.from(JSON.stringify(randomJson(f))) };
    case 5:
      return { contentType, body: mutate(f, Buffer.from(JSON.stringify(senmlPack(f)))) };
    case 6:
      return { contentType: f.chance(0.6) ? 'application/senml+cbor' : contentType, body: cborEncode(f.chance(0.5) ? randomJson(f) : senmlPack(f)) };
    case 7:
      return { contentType, body: f.chance(0.5) ? f.bytes(f.int(300)) : Buffer.from(f.text(f.pick([10, 2000, 20_000]))) };
    default:
      return { contentType, body: Buffer.alloc(0) };
  }
}

const goodSegments = ['a', 'b', 'room-1', 'sensors', 'x_y', 'é', '中文', '😀', '1', '-'];

function goodSubtopic(f: Fuzz): string {
  return Array.from({ length: f.int(4) }, () => f.pick(goodSegments)).join('/');
}

/** Subtopic segments a publisher may not use, and some it may. */
function badSubtopic(f: Fuzz): string {
  const segments = Array.from({ length: 1 + f.int(4) }, () => f.pick(['+', '#', '$SYS', '.', '..', '*', '>', ' ', '\t', '\u0000', 'a.b', 'a+b', 'a#', 'x'.repeat(f.int(1500)), f.text(12), ...goodSegments]));
  return segments.join(f.pick(['/', '/', '//']));
}

/** A subtopic as URL path segments: percent-encoded, raw, or with broken percent escapes. */
function pathSubtopic(f: Fuzz): string {
  const sub = f.chance(0.5) ? goodSubtopic(f) : badSubtopic(f);
  if (!sub) return '';
  return (
    '/' +
    sub
      .split('/')
      .map((s) => (f.chance(0.15) ? s.replace(/[^A-Za-z0-9_-]/g, '') + f.pick(['%', '%zz', '%ff%fe', '%00', '%2F', '%2e%2e', '%C3%28', '%E2%82', '%F0%9F%98', '%23', '%3F']) : encode(s)))
      .join('/')
  );
}

/**
 * A log line that says the server failed, not the input: level error (50) or fatal (60), or a
 * mention of an uncaught exception or unhandled rejection. Refused input is logged at info or warn.
 */
function isFailureLine(l: LogLine): boolean {
  return (typeof l.level === 'number' && l.level >= 50) || /uncaught|unhandled/i.test(JSON.stringify(l));
}

// ---- the storm: inputs made one after another from the generator, sent `concurrency` at a time ----

interface Probe {
  /** Counts an outcome (status code, close code, reply code) for the summary. */
  note(outcome: string): void;
  /** A broken rule: the input is reported with the reason. */
  fail(why: string): void;
}

interface StormReport {
  inputs: number;
  ms: number;
  outcomes: Map<string, number>;
  failures: string[];
}

async function storm<C>(
  server: Server,
  stderr: () => string,
  protocol: string,
  salt: number,
  limits: { inputs: number; concurrency: number; ms: number },
  make: (f: Fuzz, i: number) => C,
  show: (c: C) => string,
  run: (c: C, probe: Probe, worker: number) => Promise<void>,
): Promise<StormReport> {
  const f = new Fuzz((seed + salt * 0x9e3779b9) >>> 0);
  const report: StormReport = { inputs: 0, ms: 0, outcomes: new Map(), failures: [] };
  const recent: string[] = [];
  const alive = () => server.child.exitCode === null && server.child.signalCode === null;
  const started = Date.now();
  const logsBefore = server.logs.length;
  const worker = async (w: number) => {
    while (report.inputs < limits.inputs && Date.now() - started < limits.ms && alive()) {
      const i = report.inputs++;
      let shown = () => `${protocol} input ${i}`;
      const probe: Probe = {
        note: (o) => report.outcomes.set(o, (report.outcomes.get(o) ?? 0) + 1),
        fail: (why) => void report.failures.push(`${why}\n    ${shown()}`),
      };
      try {
        const c = make(f, i);
        shown = () => `${protocol} input ${i}: ${show(c)}`;
        recent.push(shown());
        if (recent.length > 6) recent.shift();
        await run(c, probe, w);
      } catch (e) {
        probe.fail(`the test client failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: limits.concurrency }, (_, w) => worker(w)));
  report.ms = Date.now() - started;
  await pause(200); // what the last inputs make the server log
  for (const l of server.logs.slice(logsBefore).filter(isFailureLine)) report.failures.push(`logged during the ${protocol} storm: ${JSON.stringify(l)}`);
  if (!alive()) {
    report.failures.push(`the server exited (code ${server.child.exitCode}, signal ${server.child.signalCode}) during the ${protocol} storm; the last inputs:\n    ${recent.join('\n    ')}\nserver stderr: ${stderr().slice(-4000)}`);
  }
  return report;
}

/** The storm's summary as a test diagnostic, then: the process runs, /health answers, no input broke a rule. */
async function assertSurvived(t: TestContext, server: Server, protocol: string, report: StormReport): Promise<void> {
  const outcomes = [...report.outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ×${n}`).join(', ');
  t.diagnostic(`${protocol}: ${report.inputs} inputs in ${report.ms} ms (${replay}); outcomes: ${outcomes}`);
  // one line per kind of failure, with how often it came and the first input that caused it
  const kinds = new Map<string, { count: number; first: string }>();
  for (const failure of report.failures) {
    const kind = failure.split('\n')[0]!.replace(/"(time|reqId|port|remotePort|address)":[^,}]*/g, '"$1":…').slice(0, 300);
    const k = kinds.get(kind) ?? { count: 0, first: failure };
    kinds.set(kind, { ...k, count: k.count + 1 });
  }
  const summary = [...kinds].map(([kind, k]) => `${kind} ×${k.count}; first:\n${k.first.slice(0, 3000)}`);
  assert.equal(report.failures.length, 0, `${protocol} (${replay}): ${report.failures.length} failures\n${summary.join('\n\n')}`);
  assert.equal(server.child.exitCode, null, `the server exited during the ${protocol} storm (${replay})`);
  const health = await fetch(`${server.api}/health`, { signal: AbortSignal.timeout(answerWithinMs) });
  assert.equal(health.status, 200);
}

/** An HTTP answer to bad input: accepted (`ok`), or a 4xx or 503 problem+json; never another 5xx. */
function checkAnswer(probe: Probe, res: { status: number; contentType: string | undefined; body: string }, ok: readonly number[]): void {
  probe.note(String(res.status));
  if (ok.includes(res.status)) return;
  let code: unknown;
  try {
    code = (JSON.parse(res.body) as { code?: unknown }).code;
  } catch {
    code = undefined;
  }
  const what = `HTTP ${res.status}${code === undefined ? '' : ` ${String(code)}`}`;
  if ((res.status >= 400 && res.status < 500) || res.status === 503) {
    if (!/^application\/problem\+json/.test(res.contentType ?? '')) probe.fail(`${what} with content type ${res.contentType}, not application/problem+json`);
    return;
  }
  probe.fail(`${what}: neither accepted nor a 4xx/503 refusal: ${res.body.slice(0, 300)}`);
}

// ---- MQTT: byte streams over TCP or WebSocket (/mqtt) ----

/** A byte stream to the broker: what came back, and whether the server closed it. */
interface Link {
  first: Buffer | undefined;
  closed: boolean;
  send(b: Buffer): void;
  destroy(): void;
}

function openLink(transport: 'tcp' | 'ws', mqttPort: number, wsBase: string): Promise<Link> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the MQTT ${transport} listener did not accept a connection within ${answerWithinMs} ms`)), answerWithinMs);
    const link: Link = { first: undefined, closed: false, send: () => {}, destroy: () => {} };
    const opened = () => (clearTimeout(timer), resolve(link));
    const failed = (e: Error) => (clearTimeout(timer), link.closed = true, reject(e));
    if (transport === 'tcp') {
      const s = net.connect({ host: '127.0.0.1', port: mqttPort });
      s.on('data', (d: Buffer) => (link.first ??= d));
      s.on('close', () => (link.closed = true));
      s.on('error', (e) => (link.closed ? undefined : failed(e)));
      s.once('connect', () => {
        s.removeAllListeners('error');
        s.on('error', () => {}); // a reset after the server closed: the outcome is `closed`
        opened();
      });
      link.send = (b) => void (s.writable && s.write(b));
      link.destroy = () => s.destroy();
    } else {
      const ws = new WebSocket(`${wsBase}/mqtt`, 'mqtt');
      ws.on('message', (d: Buffer) => (link.first ??= d));
      ws.on('close', () => (link.closed = true));
      ws.on('error', (e) => (ws.readyState === ws.CONNECTING ? failed(e) : undefined));
      ws.once('open', opened);
      link.send = (b) => void (ws.readyState === ws.OPEN && ws.send(b));
      link.destroy = () => ws.terminate();
    }
  });
}

interface MqttCase {
  kind: string;
  transport: 'tcp' | 'ws';
  chunks: Buffer[];
  /** The first chunk is an intact CONNECT: a CONNACK (or a close) is owed. */
  connack: boolean;
}

/** The packet's bytes; undefined when mqtt-packet refuses it or writes less than the whole packet its header announces. */
function generated(packet: MqttPacket, version: number): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = withBadUtf8(mqttPacket.generate(packet, { protocolVersion: version }));
  } catch {
    return undefined; // random bytes stand in
  }
  let length = 0;
  let i = 1;
  for (let shift = 0; i < bytes.length && i <= 4; i++, shift += 7) {
    length += (bytes[i]! & 0x7f) * 2 ** shift;
    if (!(bytes[i]! & 0x80)) break;
  }
  return bytes.length === i + 1 + length ? bytes : undefined;
}

function mqttCases(fleet: CliFleet) {
  const channelTopic = (sub: string) => `channels/${fleet.channel}/messages${sub ? `/${sub}` : ''}`;
  const topic = (f: Fuzz): string => {
    switch (f.int(8)) {
      case 0:
      case 1:
        return channelTopic(goodSubtopic(f));
      case 2:
        return channelTopic(badSubtopic(f));
      case 3:
        return f.pick(['', '#', '+', '/', '$SYS/broker', `$share/g/${channelTopic('#')}`, 'channels/+/messages', 'channels/#', channelTopic('#'), channelTopic('+/x'), '\u0000', 'a\u0000b', `channels/${fleet.channel}/messages\u0000`]);
      case 4:
        return channelTopic('x'.repeat(f.int(70_000)));
      case 5:
        return channelTopic(`a${badUtf8}b`);
      case 6:
        return `channels/${f.text(40)}/messages`;
      default:
        return f.text(40);
    }
  };
  const userProperties = (f: Fuzz) => ({ [f.text(6)]: f.chance(0.5) ? f.text(10) : [f.text(5), f.text(5)] });

  const connect = (f: Fuzz, version: 3 | 4 | 5, i: number): IConnectPacket => {
    const p: IConnectPacket = {
      cmd: 'connect',
      protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: version,
      clientId: f.chance(0.85) ? `fz-${seed}-${i}` : f.pick(['', 'x'.repeat(300), `fz-${i}${badUtf8}`, f.text(30)]),
      clean: f.chance(0.8),
      keepalive: f.pick([0, 1, 60, 65535]),
    };
    if (f.chance(0.9)) p.username = f.chance(0.9) ? fleet.device.id : f.pick([f.text(20), '', `${fleet.device.id}${badUtf8}`]);
    if (f.chance(0.95)) p.password = f.chance(0.85) ? Buffer.from(fleet.device.secret) : f.pick([Buffer.alloc(0), Buffer.from('wrong'), f.bytes(40)]);
    if (f.chance(0.15)) {
      const will = randomPayload(f);
      p.will = { topic: topic(f), payload: will.body, qos: f.pick([0, 1, 2] as const), retain: f.chance(0.3), ...(version === 5 ? { properties: { contentType: will.contentType, willDelayInterval: f.pick([0, 1, 2 ** 32 - 1]) } } : {}) };
    }
    if (version === 5 && f.chance(0.5)) {
      p.properties = {
        ...(f.chance(0.5) ? { sessionExpiryInterval: f.pick([0, 1, 60, 2 ** 32 - 1]) } : {}),
        ...(f.chance(0.3) ? { receiveMaximum: f.pick([0, 1, 10, 65535]) } : {}),
        ...(f.chance(0.3) ? { maximumPacketSize: f.pick([0, 1, 16, 100, 1 << 20]) } : {}),
        ...(f.chance(0.3) ? { topicAliasMaximum: f.pick([0, 1, 10, 65535]) } : {}),
        ...(f.chance(0.2) ? { requestResponseInformation: f.chance(0.5), requestProblemInformation: f.chance(0.5) } : {}),
        ...(f.chance(0.2) ? { userProperties: userProperties(f) } : {}),
        ...(f.chance(0.05) ? { authenticationMethod: f.pick(['SCRAM-SHA-1', '']) } : {}),
      };
    }
    return p;
  };

  /** A PUBLISH the broker should take, with a random payload and content type. */
  const validPublish = (f: Fuzz, version: number, id: number): MqttPacket => {
    const payload = randomPayload(f);
    const qos = f.pick([0, 1, 1, 2] as const);
    return { cmd: 'publish', topic: channelTopic(goodSubtopic(f)), payload: payload.body, qos, retain: f.chance(0.1), dup: false, ...(qos > 0 ? { messageId: id } : {}), ...(version === 5 ? { properties: { contentType: payload.contentType } } : {}) };
  };

  const anyPacket = (f: Fuzz, version: number, id: number): MqttPacket => {
    const messageId = f.chance(0.9) ? id : f.pick([0, 65535, 65536]);
    switch (f.int(10)) {
      case 0:
      case 1:
      case 2:
      case 3: {
        const payload = randomPayload(f, { oversize: f.chance(0.03) });
        const qos = f.pick([0, 1, 2] as const);
        const properties = version === 5 && f.chance(0.6)
          ? {
              ...(f.chance(0.5) ? { contentType: payload.contentType } : {}),
              ...(f.chance(0.2) ? { topicAlias: f.pick([0, 1, 2, 65535]) } : {}),
              ...(f.chance(0.2) ? { payloadFormatIndicator: f.chance(0.5) } : {}),
              ...(f.chance(0.2) ? { messageExpiryInterval: f.pick([0, 1, 2 ** 32 - 1]) } : {}),
              ...(f.chance(0.2) ? { responseTopic: topic(f), correlationData: f.bytes(f.int(20)) } : {}),
              ...(f.chance(0.2) ? { userProperties: userProperties(f) } : {}),
              ...(f.chance(0.1) ? { subscriptionIdentifier: f.pick([0, 1, 268_435_455]) } : {}),
            }
          : undefined;
        return { cmd: 'publish', topic: topic(f), payload: payload.body, qos, retain: f.chance(0.2), dup: f.chance(0.1), ...(qos > 0 || f.chance(0.1) ? { messageId } : {}), ...(properties ? { properties } : {}) };
      }
      case 4:
      case 5:
        return {
          cmd: 'subscribe',
          messageId,
          subscriptions: Array.from({ length: f.chance(0.1) ? 0 : 1 + f.int(3) }, () => ({ topic: topic(f), qos: f.pick([0, 1, 2] as const), ...(version === 5 ? { nl: f.chance(0.5), rap: f.chance(0.5), rh: f.pick([0, 1, 2, 3]) } : {}) })),
          ...(version === 5 && f.chance(0.3) ? { properties: { subscriptionIdentifier: f.pick([0, 1, 268_435_455]), userProperties: userProperties(f) } } : {}),
        };
      case 6:
        return { cmd: 'unsubscribe', messageId, unsubscriptions: Array.from({ length: f.chance(0.1) ? 0 : 1 + f.int(3) }, () => topic(f)) };
      case 7:
        return { cmd: 'pingreq' };
      case 8:
        return { cmd: f.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), messageId, ...(version === 5 && f.chance(0.5) ? { reasonCode: f.pick([0, 0x10, 0x80, 0x92, 0xff]) } : {}) };
      default:
        return f.pick<MqttPacket>([
          { cmd: 'disconnect', ...(version === 5 ? { reasonCode: f.pick([0, 4, 0x80, 0x8e, 0xff]), properties: { sessionExpiryInterval: f.pick([0, 60]), reasonString: f.text(20) } } : {}) },
          connect(f, version === 5 ? 5 : 4, id),
          { cmd: 'auth', reasonCode: f.pick([0, 0x18, 0x19]), properties: { authenticationMethod: f.text(10), authenticationData: f.bytes(f.int(20)) } },
          { cmd: 'pingresp' },
          { cmd: 'connack', returnCode: 0, sessionPresent: false },
        ]);
    }
  };

  return (f: Fuzz, i: number): MqttCase => {
    const transport = f.chance(0.8) ? 'tcp' : 'ws';
    const kind = f.int(10);
    if (kind < 2) {
      const chunks = Array.from({ length: 1 + f.int(3) }, () => f.bytes(f.int(200)));
      if (f.chance(0.5)) chunks[0] = Buffer.concat([Buffer.from([f.pick([0x10, 0x30, 0x82, 0xc0, 0xe0, 0xf0])]), chunks[0]!]);
      return { kind: 'random bytes', transport, chunks, connack: false };
    }
    const version = f.pick([4, 4, 5, 5, 3] as const);
    const plain: IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `fz-${seed}-${i}`, clean: true, keepalive: 60, username: fleet.device.id, password: Buffer.from(fleet.device.secret) };
    const hello = generated(connect(f, version, i), version) ?? generated(plain, 4)!;
    if (kind < 4) {
      const chunks = [hello, ...Array.from({ length: 1 + f.int(5) }, (_, k) => generated(validPublish(f, version, k + 1), version) ?? f.bytes(10))];
      return { kind: `valid PUBLISH v${version}`, transport, chunks, connack: true };
    }
    const mangleConnect = f.chance(0.15);
    const chunks = [mangleConnect ? mutate(f, hello) : hello];
    for (let k = 1 + f.int(6); k > 0; k--) {
      const packet = generated(anyPacket(f, version, k), version) ?? f.bytes(1 + f.int(30));
      chunks.push(f.chance(0.6) ? mutate(f, packet) : packet);
    }
    // a packet may also come in pieces, split at random
    if (f.chance(0.2)) {
      const all = Buffer.concat(chunks.slice(1));
      const at = f.int(all.length + 1);
      chunks.splice(1, chunks.length - 1, all.subarray(0, at), all.subarray(at));
    }
    return { kind: `mutated packets v${version}`, transport, chunks, connack: !mangleConnect };
  };
}

async function runMqtt(c: MqttCase, probe: Probe, mqttPort: number, wsBase: string): Promise<void> {
  const link = await openLink(c.transport, mqttPort, wsBase);
  try {
    link.send(c.chunks[0]!);
    if (c.connack) {
      // [MQTT-3.2.0-1]: an intact CONNECT is answered with CONNACK (or the connection closes)
      if (!(await until(() => link.first !== undefined || link.closed, answerWithinMs))) probe.fail(`no CONNACK and no close within ${answerWithinMs} ms of an intact CONNECT`);
      probe.note(link.first?.[0] === 0x20 ? `CONNACK ${link.first[3]}` : link.first ? `first packet 0x${link.first[0]!.toString(16)}` : 'closed before CONNACK');
    }
    for (const chunk of c.chunks.slice(1)) {
      if (link.closed) break;
      link.send(chunk);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => link.closed, 100);
    probe.note(link.closed ? 'closed by the server' : 'left open');
  } finally {
    link.destroy();
  }
}

// ---- CoAP: datagrams ----

/** A UDP socket to the CoAP listener: waits for the answer to a message ID, resets notifications (RFC 7641 §3.6). */
class CoapPeer {
  readonly socket = dgram.createSocket('udp4');
  private readonly waiting = new Map<number, (p: ParsedPacket) => void>();
  private mid = 0;

  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      let p: ParsedPacket;
      try {
        p = coapParse(m);
      } catch {
        return;
      }
      if (p.ack || p.reset) this.waiting.get(p.messageId)?.(p);
      else if (p.confirmable) this.send(coapGenerate({ code: '0.00', messageId: p.messageId, reset: true }));
    });
  }

  async open(): Promise<this> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this;
  }

  send(datagram: Buffer): void {
    this.socket.send(datagram, this.port, '127.0.0.1', () => {}); // a datagram UDP cannot carry is simply not sent
  }

  /** Sends with a fresh message ID (bytes 2–3, RFC 7252 §3) and resolves with the ACK or RST for it, or undefined after `ms`. */
  exchange(datagram: Buffer, ms: number): Promise<ParsedPacket | undefined> {
    const mid = (this.mid = (this.mid + 1) & 0xffff);
    const d = Buffer.from(datagram);
    if (d.length >= 4) d.writeUInt16BE(mid, 2);
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.waiting.delete(mid), resolve(undefined)), ms);
      this.waiting.set(mid, (p) => (clearTimeout(timer), this.waiting.delete(mid), resolve(p)));
      this.send(d);
    });
  }

  close(): void {
    this.socket.close();
  }
}

interface CoapCase {
  kind: string;
  datagrams: Buffer[];
  /** Intact messages, sent on a socket that sends nothing else, with fresh message IDs: each is owed an answer. */
  answered: boolean;
}

/** Whether the listener must answer this datagram when it is confirmable: it parses as CoAP (RFC 7252 §4.2, §5.2.1). */
function owesAnswer(d: Buffer): boolean {
  try {
    const p = coapParse(d);
    return d.length >= 4 && p.confirmable && !p.ack && !p.reset;
  } catch {
    return false;
  }
}

/** Device credentials for an HTTP or WebSocket request: mostly the device's own, else missing, wrong or malformed. */
function deviceAuth(f: Fuzz, fleet: CliFleet): Record<string, string> {
  if (f.int(10) < 7) return { authorization: `Device ${fleet.device.secret}` };
  return f.pick<Record<string, string>>([
    {},
    { authorization: `Device ${f.ascii(30)}` },
    { authorization: 'Device' },
    { authorization: `Bearer ${f.ascii(40)}` },
    { authorization: `Basic ${f.ascii(20)}` },
    { authorization: `Basic ${Buffer.from(`${fleet.device.id}:${f.ascii(10)}`).toString('base64')}` },
    { authorization: `Basic ${Buffer.from(`${fleet.device.id}:${fleet.device.secret}`).toString('base64')}` },
    { authorization: `Thing ${fleet.device.secret}` },
    { authorization: `${f.ascii(8)} ${f.ascii(8)}` },
  ]);
}

function coapCases(fleet: CliFleet) {
  const path = (f: Fuzz): Buffer[] => {
    const base = f.chance(0.85) ? ['channels', f.chance(0.9) ? fleet.channel : f.text(40), 'messages'] : Array.from({ length: f.int(5) }, () => f.text(12));
    const sub = f.chance(0.6) ? goodSubtopic(f) : badSubtopic(f);
    const segments = [...base, ...(sub ? sub.split('/') : [])].map((s) => Buffer.from(s));
    if (f.chance(0.1)) segments.push(Buffer.from([0xc3, 0x28, 0xff]));
    if (f.chance(0.05)) segments.push(Buffer.alloc(0));
    return segments;
  };
  const query = (f: Fuzz): Buffer[] => {
    const q: string[] = [];
    const auth = f.int(10);
    if (auth < 7) q.push(`auth=${fleet.device.secret}`);
    else if (auth === 7) q.push(`auth=${f.ascii(30)}`);
    else if (auth === 8) q.push(`auth=${fleet.device.secret}`, `auth=${f.text(10)}`);
    if (f.chance(0.2)) q.push(f.text(20));
    return q.map((s) => Buffer.from(s));
  };
  const block = (f: Fuzz) => (f.chance(0.7) ? uint(f.int(2 ** 24)) : f.bytes(f.int(5)));
  const extra = (f: Fuzz, options: { name: string; value: Buffer }[]): { name: string; value: Buffer } => {
    switch (f.int(12)) {
      case 0:
        return { name: String(option.contentFormat), value: uint(f.pick([0, 42, 50, 60, 110, 111, 112, 310, f.int(65536)])) }; // Content-Format
      case 1:
        return { name: String(option.block1), value: block(f) }; // Block1
      case 2:
        return { name: String(option.block2), value: block(f) }; // Block2
      case 3:
        return { name: String(option.size1), value: f.chance(0.5) ? uint(f.pick([0, 100, 1 << 20, 2 ** 32 - 1])) : f.bytes(f.int(7)) }; // Size1
      case 4:
        return { name: String(option.observe), value: f.chance(0.6) ? uint(f.pick([0, 0, 1, 2, 0xffffff])) : f.bytes(f.int(5)) }; // Observe
      case 5:
        return { name: String(f.int(f.pick([16, 300, 65000]))), value: f.bytes(f.int(20)) };
      case 6:
        return { name: String(f.pick([1, 3, 4, 5, 7, 17, 35, 39, 258, 2049])), value: f.bytes(f.int(12)) };
      case 7:
        return { name: f.pick([String(option.uriPath), String(option.uriQuery), String(option.contentFormat), String(option.size1), String(1 + 2 * f.int(30))]), value: f.bytes(1000 + f.int(2000)) };
      default: {
        // a repeated option: the same number again, as a client that writes Block1 or Content-Format twice
        const again = options.length ? f.pick(options) : { name: String(option.block1), value: block(f) };
        return { name: again.name, value: f.chance(0.5) ? again.value : f.bytes(f.int(4)) };
      }
    }
  };
  const code = (f: Fuzz) => f.pick(['GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'FETCH', 'iPATCH', '0.00', `0.${String(f.int(32)).padStart(2, '0')}`, '2.05', '4.04', '7.31']);
  const build = (f: Fuzz, codeText: string, options: { name: string; value: Buffer }[], payload: Buffer, confirmable: boolean): Buffer | undefined => {
    try {
      // at most 65,000 bytes: a UDP datagram carries 65,507, and a mutation may add a few
      return coapGenerate({ code: codeText, confirmable, messageId: 0, token: f.bytes(f.int(9)), options, payload }, 65_000);
    } catch {
      return undefined; // coap-packet will not write it: a simpler request stands in
    }
  };
  /** Uri-Path and Uri-Query of a random target, in order. */
  const target = (f: Fuzz): { name: string; value: Buffer }[] => [...path(f).map((value) => ({ name: String(option.uriPath), value })), ...query(f).map((value) => ({ name: String(option.uriQuery), value }))];
  const request = (f: Fuzz, confirmable: boolean): Buffer => {
    const options = target(f);
    for (let n = f.int(5); n > 0; n--) options.push(extra(f, options));
    const p = randomPayload(f);
    const payload = f.chance(0.9) ? p.body.subarray(0, 1024) : p.body.length > 1024 ? p.body : f.bytes(f.pick([1500, 20_000, 60_000]));
    return build(f, code(f), options, payload, confirmable) ?? build(f, 'POST', options.filter((o) => o.name === String(option.uriPath)), Buffer.alloc(0), confirmable)!;
  };
  /** A Block1 upload (RFC 7959 §2.5) with random sizes, numbers, gaps and More flags. */
  const upload = (f: Fuzz): Buffer[] => {
    const szx = f.pick([0, 2, 6, 7]);
    const options = target(f);
    const format = { name: String(option.contentFormat), value: uint(f.pick([42, 110, 0])) };
    const blocks = 2 + f.int(3);
    return Array.from({ length: blocks }, (_, k) => {
      const num = f.chance(0.85) ? k : f.int(1 << 20);
      const more = k < blocks - 1 ? f.chance(0.9) : f.chance(0.1);
      const size = f.chance(0.85) ? 2 ** (Math.min(szx, 6) + 4) : f.int(1100);
      const b1 = { name: String(option.block1), value: uint(num * 16 + (more ? 8 : 0) + szx) };
      const size1 = k === 0 && f.chance(0.3) ? [{ name: String(option.size1), value: uint(f.pick([100, maxPayload + 1, 2 ** 32 - 1])) }] : [];
      return build(f, 'POST', [...options, format, b1, ...size1], f.bytes(size), true) ?? f.bytes(8);
    });
  };
  return (f: Fuzz): CoapCase => {
    const kind = f.int(10);
    if (kind < 2) return { kind: 'random datagram', answered: false, datagrams: [f.chance(0.5) ? f.bytes(f.int(120)) : Buffer.concat([Buffer.from([0x40 | f.int(64), f.int(256), 0, 0]), f.bytes(f.int(80))])] };
    if (kind < 3) return { kind: 'mutated request', answered: false, datagrams: [mutate(f, request(f, f.chance(0.8)))] };
    if (kind < 4) return { kind: 'block-wise upload', answered: true, datagrams: upload(f) };
    const confirmable = f.chance(0.85);
    return { kind: confirmable ? 'request' : 'non-confirmable request', answered: confirmable, datagrams: [request(f, confirmable)] };
  };
}

async function runCoap(c: CoapCase, probe: Probe, peers: { clean: CoapPeer; dirty: CoapPeer }): Promise<void> {
  // an input that may repeat or garble a message ID goes on a socket of its own: duplicate detection
  // (RFC 7252 §4.5) must not swallow the requests that are owed an answer
  const peer = c.answered ? peers.clean : peers.dirty;
  for (const d of c.datagrams) {
    const owed = c.answered && owesAnswer(d);
    if (!c.answered) {
      peer.send(d);
      probe.note('sent');
      await pause(1);
      continue;
    }
    const answer = await peer.exchange(d, owed ? answerWithinMs : 30);
    if (owed && !answer) probe.fail(`no answer to a well-formed confirmable message within ${answerWithinMs} ms`);
    probe.note(answer ? (answer.reset ? 'RST' : answer.code) : owed ? 'unanswered' : 'silent');
    // 5.00 is for the server's own failures, never for bad input (RFC 7252 §5.9.3.1)
    if (answer?.code === '5.00') probe.fail(`5.00 Internal Server Error: ${answer.payload.toString()}`);
  }
}

// ---- WebSocket: upgrades and frames ----

interface WsCase {
  kind: string;
  path: string;
  headers: Record<string, string>;
  protocols: string[];
  frames: { data: Buffer; binary: boolean }[];
}

function wsCases(fleet: CliFleet) {
  const auth = (f: Fuzz) => deviceAuth(f, fleet);
  const queryString = (f: Fuzz): string => {
    const parts: string[] = [];
    if (f.chance(0.8)) parts.push(`content_type=${f.chance(0.8) ? encode(f.pick(contentTypes)) : encode(f.text(30))}`);
    if (f.chance(0.2)) parts.push(`envelope=${f.pick(['true', 'false', '1', 'yes', f.ascii(5)])}`);
    if (f.chance(0.1)) parts.push(`authorization=${f.chance(0.5) ? fleet.device.secret : f.ascii(20)}`);
    if (f.chance(0.1)) parts.push(`${f.ascii(6)}=${f.pick(['%', '%zz', '%ff', f.ascii(6)])}`);
    return parts.length ? `?${parts.join('&')}` : '';
  };
  const frame = (f: Fuzz): { data: Buffer; binary: boolean } => {
    switch (f.int(6)) {
      case 0:
        return { data: Buffer.from(badSenml(f)), binary: false };
      case 1:
        return { data: Buffer.from(f.text(f.pick([10, 300, 5000]))), binary: false };
      case 2:
        return { data: f.bytes(f.int(300)), binary: true };
      case 3:
        // invalid UTF-8 in a text frame (RFC 6455 §8.1: the server fails the connection, 1007)
        return { data: Buffer.from([0x5b, 0xc3, 0x28, 0xff, 0x5d]), binary: false };
      case 4:
        return { data: Buffer.alloc(f.chance(0.5) ? maxPayload + 1 : maxPayload + 70 * 1024, 0x61), binary: f.chance(0.5) };
      default: {
        const p = randomPayload(f);
        return { data: p.body, binary: f.chance(0.5) };
      }
    }
  };
  return (f: Fuzz): WsCase => {
    const kind = f.int(10);
    let path: string;
    if (kind < 6) path = `/ws/channels/${fleet.channel}/messages${pathSubtopic(f)}`;
    else if (kind < 8) path = `/ws/channels/${f.chance(0.5) ? encode(f.text(20)) : f.ascii(20).replace(/[?#]/g, '')}/messages${pathSubtopic(f)}`;
    else path = f.pick(['/ws', '/ws/', '/ws/channels', `/ws/channels/${fleet.channel}`, `/ws/channels/${fleet.channel}/messages/%23`, `/ws/channels/${fleet.channel}/messages/a/+`, '/mqtt', `/ws/${f.ascii(30).replace(/[?#]/g, '')}`]);
    return {
      kind: ['valid path', 'valid path', 'valid path', 'valid path', 'valid path', 'valid path', 'random channel', 'random channel', 'random path', 'random path'][kind]!,
      path: path + queryString(f),
      headers: auth(f),
      protocols: f.chance(0.1) ? [f.pick(['mqtt', 'mqttv3.1', f.ascii(8).replace(/[^A-Za-z0-9]/g, '') || 'x'])] : [],
      frames: Array.from({ length: f.int(5) }, () => frame(f)),
    };
  };
}

async function runWs(c: WsCase, probe: Probe, wsBase: string): Promise<void> {
  let ws: WebSocket;
  try {
    ws = new WebSocket(wsBase + c.path, c.protocols, { headers: c.headers, handshakeTimeout: answerWithinMs });
  } catch (e) {
    probe.note(`not sendable (${(e as Error).name})`);
    return;
  }
  let closedByUs = false;
  let upgraded = false;
  let clientError: string | undefined;
  const ended = new Promise<void>((resolve) => {
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => (checkAnswer(probe, { status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }, []), req.destroy(), resolve()));
      res.on('error', () => resolve());
    });
    ws.on('error', (e) => {
      if (/timed out/.test(e.message)) probe.fail(`no answer to the upgrade within ${answerWithinMs} ms`);
      clientError = e.message;
      resolve();
    });
    ws.on('close', (code) => {
      if (!upgraded) probe.note(`refused by the client: ${clientError}`); // e.g. no subprotocol agreed (RFC 6455 §4.1)
      else if (!closedByUs) {
        probe.note(`close ${code}`);
        // a frame the client must refuse (RFC 6455 §8.1: a text frame that is not UTF-8); 1011: the
        // server failed; 1006: it dropped the connection without a close frame (§7.1.5)
        if (clientError && /invalid websocket frame/i.test(clientError)) probe.fail(`the server sent a frame the client refuses: ${clientError}`);
        else if (code === 1011 || code === 1006) probe.fail(`the server closed the WebSocket with ${code}${clientError ? ` (${clientError})` : ''}`);
      }
      resolve();
    });
  });
  const opened = await Promise.race([new Promise<boolean>((r) => ws.once('open', () => r(true))), ended.then(() => false)]);
  if (!opened) return;
  upgraded = true;
  probe.note('upgraded');
  for (const fr of c.frames) {
    if (ws.readyState !== ws.OPEN) break;
    ws.send(fr.data, { binary: fr.binary });
  }
  await Promise.race([ended, pause(150)]);
  if (ws.readyState === ws.OPEN) {
    closedByUs = true;
    ws.close(1000);
    await Promise.race([ended, pause(300)]);
  }
  ws.terminate();
}

// ---- HTTP: publish and the readers API ----

interface HttpCase {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

function httpCases(fleet: CliFleet) {
  const readerAuth = (f: Fuzz): Record<string, string> => (f.chance(0.6) ? { authorization: `Bearer ${fleet.token}` } : deviceAuth(f, fleet));
  const channel = (f: Fuzz) => (f.chance(0.9) ? fleet.channel : f.pick([encode(f.text(20)) || 'x', '00000000-0000-0000-0000-000000000000', f.ascii(10).replace(/[/?#]/g, '') || 'x']));
  const readerValues: Record<string, string[]> = {
    type: ['senml', 'json', 'binary', 'xml', ''],
    subtopic: ['a', 'a/b', '+', '#', '..', 'a.b'],
    comparator: ['eq', 'lt', 'le', 'gt', 'ge', 'ne'],
    v: ['1', '-1.5', 'NaN', '1e400', 'x'],
    vb: ['true', 'false', '1', 'maybe'],
    from: ['0', '1700000000', '2024-01-01T00:00:00Z', 'yesterday', '-1e400', '99999999999999999999'],
    to: ['0', '1700000000.5', '2099-12-31T23:59:59Z', 'NaN'],
    offset: ['0', '1', '-1', '1e9', 'x'],
    limit: ['0', '1', '1000', '1001', '-1', '1e3', 'abc'],
    order: ['time', 'name', 'value', 'publisher', 'subtopic', 'random'],
    dir: ['asc', 'desc', 'up'],
    aggregation: ['min', 'max', 'avg', 'sum', 'count', 'median'],
    interval: ['1s', '30m', '1d', '0s', '99999999999d', '1x'],
    format: ['json', 'csv', 'xml'],
  };
  const readerQuery = (f: Fuzz): string => {
    const parts: string[] = [];
    for (let n = f.int(6); n > 0; n--) {
      const key = f.chance(0.85) ? f.pick([...Object.keys(readerValues), 'name', 'publisher', 'vs', 'vd']) : f.ascii(8);
      const pool = readerValues[key];
      const value = pool && f.chance(0.7) ? pool[f.int(pool.length)]! : f.chance(0.8) ? encode(f.text(f.pick([10, 2000]))) : f.pick(['%', '%zz', '%ff%fe', '%00']);
      parts.push(`${encode(key)}=${value}`);
    }
    return parts.length ? `?${parts.join('&')}` : '';
  };
  return (f: Fuzz): HttpCase => {
    const kind = f.int(20);
    if (kind < 11 || kind === 19) {
      const p = randomPayload(f, { oversize: kind === 19 });
      const headers: Record<string, string> = { ...deviceAuth(f, fleet), ...(f.chance(0.95) ? { 'content-type': p.contentType.replace(/[^\t\x20-\x7e]/g, '') } : {}) };
      return { kind: kind === 19 ? 'oversize publish' : 'publish', method: 'POST', path: `/channels/${channel(f)}/messages${pathSubtopic(f)}`, headers, body: p.body };
    }
    if (kind < 18) return { kind: 'read', method: 'GET', path: `/channels/${channel(f)}/messages${f.chance(0.2) ? '/latest' : ''}${readerQuery(f)}`, headers: readerAuth(f), body: undefined };
    const method = f.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'GET']);
    return { kind: 'other method', method, path: `/channels/${channel(f)}/messages${pathSubtopic(f)}`, headers: deviceAuth(f, fleet), body: method === 'GET' ? undefined : f.bytes(f.int(50)) };
  };
}

async function runHttp(c: HttpCase, probe: Probe, api: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(api + c.path, { method: c.method, headers: c.headers, ...(c.body ? { body: c.body } : {}), signal: AbortSignal.timeout(answerWithinMs) });
  } catch (e) {
    const err = e as Error & { cause?: Error };
    if (err.name === 'TimeoutError') probe.fail(`no response within ${answerWithinMs} ms`);
    else probe.fail(`no HTTP response: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`);
    return;
  }
  const body = await res.text();
  checkAnswer(probe, { status: res.status, contentType: res.headers.get('content-type') ?? undefined, body }, c.method === 'POST' ? [202] : [200, 204]);
}

// ---- the test ----

describe(`every listener under seeded random and mutated input (${replay})`, () => {
  let server: Server;
  let fleet: CliFleet;
  let mqttPort: number;
  let coapPort: number;
  let wsBase: string;
  let stderr = '';
  /** Well-behaved subscribers, connected through the whole storm: the server keeps serving them. */
  let watcher: TestClient;
  let wsWatcher: { socket: WebSocket; frames: string[]; error: string | undefined; closed: number | undefined };
  const opened: MqttClient[] = [];
  const coapPeers: CoapPeer[] = [];
  const sockets: WebSocket[] = [];
  const checkPayload = (protocol: string, value: number) => JSON.stringify([{ bn: 'fuzz-check:', n: protocol, u: 'Cel', v: value }]);

  /** The readers API, as the organization's admin; the records named `name`. */
  async function records(name: string): Promise<{ total: number; messages: { subtopic: string; name: string; value: number; protocol: string }[] }> {
    const res = await fetch(`${server.api}/channels/${fleet.channel}/messages?total=true&name=${encodeURIComponent(name)}`, { headers: { authorization: `Bearer ${fleet.token}` }, signal: AbortSignal.timeout(answerWithinMs) });
    assert.equal(res.status, 200);
    return (await res.json()) as { total: number; messages: { subtopic: string; name: string; value: number; protocol: string }[] };
  }

  async function publishHttp(subtopic: string, body: string): Promise<void> {
    const res = await fetch(`${server.api}/channels/${fleet.channel}/messages/${subtopic}`, { method: 'POST', headers: { authorization: `Device ${fleet.device.secret}`, 'content-type': 'application/senml+json' }, body, signal: AbortSignal.timeout(answerWithinMs) });
    assert.equal(res.status, 202);
  }

  before(async () => {
    server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: 'fuzz@example.com', FLEETWIRE_ADMIN_PASSWORD: 'fuzz-password-1' }));
    server.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    mqttPort = await announcedPort(server, 'MQTT listening');
    coapPort = await announcedPort(server, 'CoAP listening');
    wsBase = server.api.replace('http', 'ws');
    fleet = await cliFleet(server.api, { email: 'fuzz@example.com', password: 'fuzz-password-1' });
    watcher = await mqttClient(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `fuzz-watcher-${seed}`, username: fleet.device.id, password: fleet.device.secret, protocolVersion: 5 }, opened);
    await watcher.subscribeAsync(`channels/${fleet.channel}/messages/fuzz-check/#`, { qos: 1 });
    // every message of the channel, as raw frames: whatever the storm publishes reaches it
    const socket = new WebSocket(`${wsBase}/ws/channels/${fleet.channel}/messages`, { headers: { authorization: `Device ${fleet.device.secret}` } });
    sockets.push(socket);
    wsWatcher = { socket, frames: [], error: undefined, closed: undefined };
    socket.on('message', (d: Buffer) => wsWatcher.frames.push(d.toString()));
    socket.on('error', (e) => (wsWatcher.error = e.message));
    socket.on('close', (code) => (wsWatcher.closed = code));
    await new Promise<void>((resolve, reject) => (socket.once('open', () => resolve()), socket.once('error', reject)));
    // a message stored before the storm must come through it unchanged
    await publishHttp('fuzz-before', JSON.stringify([{ n: 'fuzz-before', u: 'Cel', v: 21.25 }]));
    await eventually(async () => assert.equal((await records('fuzz-before')).total, 1));
    for (let k = 0; k < budget.coap.concurrency; k++) coapPeers.push(await new CoapPeer(coapPort).open(), await new CoapPeer(coapPort).open());
  });

  after(async () => {
    for (const s of sockets) s.terminate();
    for (const p of coapPeers) p.close();
    await Promise.all(opened.map((c) => c.endAsync(true)));
    await cleanupCli(); // kills the server if the last test did not stop it
  });

  test('MQTT: random bytes, mutated packets and random PUBLISHes over TCP and WebSocket are refused, and the broker keeps running', async (t) => {
    const report = await storm(server, () => stderr, 'MQTT', 1, budget.mqtt, mqttCases(fleet), (c) => `${c.kind} over ${c.transport}: ${c.chunks.map((b) => hex(b)).join(' | ')}`, (c, probe) => runMqtt(c, probe, mqttPort, wsBase));
    await assertSurvived(t, server, 'MQTT', report);
  });

  test('CoAP: random datagrams, mutated options, codes and Block1/Block2 values are answered or dropped, never with 5.00', async (t) => {
    const report = await storm(server, () => stderr, 'CoAP', 2, budget.coap, coapCases(fleet), (c) => `${c.kind}: ${c.datagrams.map((d) => hex(d)).join(' | ')}`, (c, probe, w) => runCoap(c, probe, { clean: coapPeers[2 * w]!, dirty: coapPeers[2 * w + 1]! }));
    await assertSurvived(t, server, 'CoAP', report);
  });

  test('WebSocket: random upgrade paths, queries, credentials and frames are refused with a close code or a problem, never 1011', async (t) => {
    const report = await storm(server, () => stderr, 'WebSocket', 3, budget.ws, wsCases(fleet), (c) => `${c.kind} ${c.path} ${JSON.stringify(c.headers)} protocols ${JSON.stringify(c.protocols)} frames: ${c.frames.map((fr) => `${fr.binary ? 'binary' : 'text'} ${hex(fr.data, 64)}`).join(' | ')}`, (c, probe) => runWs(c, probe, wsBase));
    await assertSurvived(t, server, 'WebSocket', report);
  });

  test('HTTP: random publishes, oversize bodies, wrong credentials and reader queries get 2xx or a 4xx/503 problem+json, never another 5xx', async (t) => {
    const report = await storm(server, () => stderr, 'HTTP', 4, budget.http, httpCases(fleet), (c) => `${c.kind} ${c.method} ${c.path} ${JSON.stringify(c.headers)} body ${c.body ? hex(c.body, 64) : 'none'}`, (c, probe) => runHttp(c, probe, server.api));
    await assertSurvived(t, server, 'HTTP', report);
  });

  test('after the storm a valid message over each protocol is stored and read back, and the subscribers connected throughout receive them', async () => {
    assert.equal(server.child.exitCode, null);
    const health = await fetch(`${server.api}/health`, { signal: AbortSignal.timeout(answerWithinMs) });
    assert.equal(health.status, 200);

    await publishHttp('fuzz-check/http', checkPayload('http', 1));

    const ws = new WebSocket(`${wsBase}/ws/channels/${fleet.channel}/messages/fuzz-check/ws?content_type=${encodeURIComponent('application/senml+json')}`, { headers: { authorization: `Device ${fleet.device.secret}` } });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
    await new Promise<void>((resolve, reject) => ws.send(checkPayload('ws', 2), (e) => (e ? reject(e) : resolve())));

    for (const [version, value] of [[4, 3], [5, 4]] as const) {
      const c = await mqttClient(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `fuzz-check-${version}-${seed}`, username: fleet.device.id, password: fleet.device.secret, protocolVersion: version }, opened);
      await c.publishAsync(`channels/${fleet.channel}/messages/fuzz-check/mqtt${version}`, checkPayload(`mqtt${version}`, value), { qos: 1 });
    }

    const request = coapGenerate({ code: 'POST', confirmable: true, messageId: 0, token: Buffer.from('check'), options: [...['channels', fleet.channel, 'messages', 'fuzz-check', 'coap'].map((s) => ({ name: String(option.uriPath), value: Buffer.from(s) })), { name: String(option.contentFormat), value: Buffer.from([110]) }, { name: String(option.uriQuery), value: Buffer.from(`auth=${fleet.device.secret}`) }], payload: Buffer.from(checkPayload('coap', 5)) });
    const answer = await coapPeers[0]!.exchange(request, answerWithinMs);
    assert.equal(answer?.code, '2.04', `CoAP answered ${answer?.code}: ${answer?.payload.toString()}`);

    const expected: [string, number, string][] = [['http', 1, 'http'], ['ws', 2, 'ws'], ['mqtt4', 3, 'mqtt'], ['mqtt5', 4, 'mqtt'], ['coap', 5, 'coap']];
    for (const [name, value, protocol] of expected) {
      await eventually(async () => {
        const body = await records(`fuzz-check:${name}`);
        assert.equal(body.total, 1, `fuzz-check:${name} stored ${body.total} times`);
        assert.deepEqual([body.messages[0]!.subtopic, body.messages[0]!.value, body.messages[0]!.protocol], [`fuzz-check/${name}`, value, protocol]);
      });
    }
    assert.ok(watcher.connected, 'the MQTT subscriber connected before the storm was dropped');
    await eventually(() => assert.deepEqual(watcher.received.map((m) => m.topic.split('/').pop()).sort(), expected.map(([name]) => name).sort()));
    assert.equal(wsWatcher.closed, undefined, `the WebSocket subscriber connected before the storm was dropped (close ${wsWatcher.closed}, client error: ${wsWatcher.error})`);
    await eventually(() => assert.deepEqual(expected.filter(([name, value]) => !wsWatcher.frames.includes(checkPayload(name, value))), []));
  });

  test('after the storm stored data is intact and every reader view answers', async () => {
    const before = await records('fuzz-before');
    assert.deepEqual(before.messages.map((m) => [m.subtopic, m.name, m.value, m.protocol]), [['fuzz-before', 'fuzz-before', 21.25, 'http']]);
    for (const query of ['type=senml&limit=1000', 'type=json&limit=1000', 'type=binary&limit=1000', 'format=csv', 'aggregation=count&interval=1d']) {
      const res = await fetch(`${server.api}/channels/${fleet.channel}/messages?total=true&${query}`, { headers: { authorization: `Bearer ${fleet.token}` }, signal: AbortSignal.timeout(answerWithinMs) });
      const text = await res.text();
      assert.equal(res.status, 200, `GET ?${query}: ${res.status} ${text.slice(0, 500)}`);
    }
  });

  test('nothing was logged at error level, no exception or rejection went unhandled, and no accepted message was lost', async () => {
    // Refused input is logged at info or warn. Error (50) and fatal (60) are for the server's own
    // failures: 'unhandled error' (HTTP 500), 'MQTT handler failed', 'CoAP request failed',
    // 'WebSocket frame handling failed', 'writing messages failed'. The process installs no
    // uncaughtException or unhandledRejection handler: either one ends it (exit code, stack on stderr).
    const failures = server.logs.filter(isFailureLine).map((l) => {
      const err = l.err as { type?: string; message?: string } | undefined;
      return `level ${String(l.level)}: ${l.msg}${err ? ` (${err.type}: ${err.message})` : ''}`;
    });
    assert.deepEqual([...new Set(failures)], [], `${replay}: the server logged ${failures.length} failures`);
    assert.doesNotMatch(stderr, /uncaught|unhandled|^\s+at /im, `${replay}: the server wrote an error on stderr`);
    // counted where no log line says it: a refusal that was the server's fault, an accepted message the writer dropped
    const metrics = await (await fetch(`${server.api}/metrics`, { signal: AbortSignal.timeout(answerWithinMs) })).text();
    const counted = (pattern: RegExp) => metrics.split('\n').filter((l) => pattern.test(l) && !/ 0$/.test(l));
    assert.deepEqual(counted(/^fleetwire_messages_rejected_total\{.*code="internal"/), []);
    assert.deepEqual(counted(/^fleetwire_messages_dropped_total\{.*reason="invalid_payload"/), []);
    assert.deepEqual(counted(/^fleetwire_http_requests_total\{.*status="5(?!03)\d\d"/), []);
  });

  test('after the storm SIGTERM stops the server cleanly, with exit code 0', async () => {
    // FLEETWIRE_SHUTDOWN_TIMEOUT (10 s) closes what is still open; 15 s is past it
    assert.equal(await stopChild(server.child, 15_000), 0, `${replay}: the server did not stop on SIGTERM; last log lines: ${JSON.stringify(server.logs.slice(-3).map((l) => l.msg))}`);
  });
});
