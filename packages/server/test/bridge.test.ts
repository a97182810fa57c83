// Protocol bridge acceptance: Fleetwire started as an operator starts it (`fleetwire start`, a
// process of its own), and for every ordered pair of {HTTP, WebSocket, MQTT 3.1.1, MQTT 5, CoAP} a
// message published on the first is received on the second with the same payload and subtopic,
// then read back from the readers API. Real clients wherever one exists: curl, mosquitto_pub /
// mosquitto_sub, libcoap's coap-client (Debian libcoap3-bin); WebSocket through the `ws` library.
// One platform process serves the whole matrix: each protocol publishes once, to its own subtopic
// `bridge/<protocol>`, and every other protocol's receiver must see that message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { announcedPort, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';
import { findProgram, programsAvailable } from './helpers/services.js';

const run = promisify(execFile);

const binaries = {
  curl: findProgram('curl'),
  mosquittoPub: findProgram('mosquitto_pub'),
  mosquittoSub: findProgram('mosquitto_sub'),
  coapClient: findProgram('coap-client', 'coap-client-notls', 'coap-client-openssl', 'coap-client-gnutls'),
};

const protocols = ['http', 'ws', 'mqtt3', 'mqtt5', 'coap'] as const;
type Protocol = (typeof protocols)[number];
const label: Record<Protocol, string> = { http: 'HTTP', ws: 'WebSocket', mqtt3: 'MQTT 3.1.1', mqtt5: 'MQTT 5', coap: 'CoAP' };
/** The protocol stored with the message (both MQTT versions are `mqtt`). */
const stored: Record<Protocol, string> = { http: 'http', ws: 'ws', mqtt3: 'mqtt', mqtt5: 'mqtt', coap: 'coap' };

/** What a receiver saw: subtopic and payload of each message. */
interface Seen {
  subtopic: string;
  payload: string;
}

const available = programsAvailable(binaries, 'curl mosquitto-clients libcoap3-bin');

describe('protocol bridge', { skip: available === true ? false : available }, () => {
  let server: Server;
  let channel: string;
  let device: { id: string; secret: string };
  let mqttPort: number;
  let coapPort: number;
  const children: ChildProcess[] = [];
  const sockets: WebSocket[] = [];
  /** Live receivers (everything but HTTP, which reads the stored messages). */
  const seen: Record<Exclude<Protocol, 'http'>, Seen[]> = { ws: [], mqtt3: [], mqtt5: [], coap: [] };
  /** coap-client observes one subtopic per process (a notification does not say its subtopic): output by sender. */
  const coapObserved = new Map<Protocol, string>();
  const payloadOf = (from: Protocol) => JSON.stringify([{ bn: 'bridge:', n: from, u: 'Cel', v: protocols.indexOf(from) + 20.5 }]);
  const subtopicOf = (from: Protocol) => `bridge/${from}`;
  const topic = (subtopic: string) => `channels/${channel}/messages/${subtopic}`;
  const coapUrl = (subtopic: string) => `coap://127.0.0.1:${coapPort}/${topic(subtopic)}?auth=${device.secret}`;

  function track(child: ChildProcess, what: string): ChildProcess {
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.once('exit', (code, signal) => {
      if (code && signal === null) console.log(`# ${what} exited with ${code}: ${stderr.trim()}`);
    });
    return child;
  }

  /** mosquitto_sub on every bridge subtopic: one line per message, topic then payload. */
  function mosquittoSub(version: 'mqttv311' | 'mqttv5', into: Seen[]): void {
    const child = track(spawn(binaries.mosquittoSub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', version, '-u', device.id, '-P', device.secret, '-q', '1', '-t', topic('bridge/#'), '-F', '%t %p'], { stdio: ['ignore', 'pipe', 'pipe'] }), `mosquitto_sub ${version}`);
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const space = line.indexOf(' ');
        into.push({ subtopic: line.slice(0, space).slice(`channels/${channel}/messages/`.length), payload: line.slice(space + 1) });
      }
    });
  }

  /** coap-client observing one subtopic (RFC 7641); its standard output is the payloads of the notifications, back to back. */
  function coapObserve(from: Protocol): void {
    coapObserved.set(from, '');
    const child = track(spawn(binaries.coapClient!, ['-m', 'get', '-s', '120', '-B', '120', coapUrl(subtopicOf(from))], { stdio: ['ignore', 'pipe', 'pipe'] }), `coap-client observing ${from}`);
    child.stdout!.on('data', (d: Buffer) => coapObserved.set(from, coapObserved.get(from)! + d.toString()));
  }

  const publish: Record<Protocol, (subtopic: string, payload: string) => Promise<void>> = {
    async http(subtopic, payload) {
      const { stdout } = await run(binaries.curl!, ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `Authorization: Device ${device.secret}`, '-H', 'Content-Type: application/senml+json', '--data-binary', payload, `${server.api}/${topic(subtopic)}`]);
      assert.equal(stdout, '202');
    },
    async ws(subtopic, payload) {
      const ws = new WebSocket(`${server.api.replace('http', 'ws')}/ws/${topic(subtopic)}?content_type=${encodeURIComponent('application/senml+json')}`, { headers: { authorization: `Device ${device.secret}` } });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      await new Promise<void>((resolve, reject) => ws.send(payload, (e) => (e ? reject(e) : resolve())));
      // the frame is published asynchronously: close once it is surely on its way
      setTimeout(() => ws.close(), 500);
    },
    async mqtt3(subtopic, payload) {
      await run(binaries.mosquittoPub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-u', device.id, '-P', device.secret, '-q', '1', '-t', topic(subtopic), '-m', payload]);
    },
    async mqtt5(subtopic, payload) {
      await run(binaries.mosquittoPub!, ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv5', '-u', device.id, '-P', device.secret, '-q', '1', '-t', topic(subtopic), '-D', 'publish', 'content-type', 'application/senml+json', '-m', payload]);
    },
    async coap(subtopic, payload) {
      const { stderr } = await run(binaries.coapClient!, ['-m', 'post', '-t', '110', '-e', payload, coapUrl(subtopic)]);
      // coap-client prints error responses (4.xx, 5.xx) on standard error
      assert.equal(stderr.trim(), '');
    },
  };

  before(async () => {
    server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: 'bridge@example.com', FLEETWIRE_ADMIN_PASSWORD: 'bridge-password-1' }));
    mqttPort = await announcedPort(server, 'MQTT listening');
    coapPort = await announcedPort(server, 'CoAP listening');
    ({ channel, device } = await cliFleet(server.api, { email: 'bridge@example.com', password: 'bridge-password-1' }));

    // receivers
    const ws = new WebSocket(`${server.api.replace('http', 'ws')}/ws/${topic('bridge/%23')}?envelope=true`, { headers: { authorization: `Device ${device.secret}` } });
    sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const e = JSON.parse(data.toString()) as { subtopic: string; payload: string };
      seen.ws.push({ subtopic: e.subtopic, payload: Buffer.from(e.payload, 'base64').toString() });
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the WebSocket did not open within 10 s')), 10_000);
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('error', reject);
    });
    mosquittoSub('mqttv311', seen.mqtt3);
    mosquittoSub('mqttv5', seen.mqtt5);
    for (const from of protocols) if (from !== 'coap') coapObserve(from);

    // every receiver is live once it saw a probe on each subtopic it watches
    const probe = JSON.stringify([{ n: 'probe', v: 0 }]);
    await eventually(
      async () => {
        await Promise.all(protocols.map((p) => fetch(`${server.api}/${topic(subtopicOf(p))}`, { method: 'POST', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/senml+json' }, body: probe, signal: AbortSignal.timeout(2000) })));
        for (const r of ['ws', 'mqtt3', 'mqtt5'] as const) assert.ok(seen[r].some((s) => s.payload === probe), `${r} receiver not live yet`);
        for (const [from, out] of coapObserved) assert.ok(out.includes(probe), `coap-client observing ${from} not live yet`);
      },
      20_000,
      300,
    );
  });

  after(async () => {
    for (const s of sockets) s.terminate();
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    if (server) assert.equal(await server.stop(), 0);
    await cleanupCli();
  });

  /** Each protocol publishes once; every receiver test of that sender awaits the same publish. */
  const published = new Map<Protocol, Promise<void>>();
  const publishOnce = (from: Protocol) => {
    if (!published.has(from)) published.set(from, publish[from](subtopicOf(from), payloadOf(from)));
    return published.get(from)!;
  };

  /** The readers API has the message once, with its subtopic, value and protocol. */
  async function readBack(from: Protocol): Promise<void> {
    await eventually(async () => {
      const res = await fetch(`${server.api}/channels/${channel}/messages?total=true&name=${encodeURIComponent(`bridge:${from}`)}`, { headers: { authorization: `Device ${device.secret}` }, signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { total: number; messages: { subtopic: string; value: number; protocol: string }[] };
      assert.equal(body.total, 1);
      assert.deepEqual([body.messages[0]!.subtopic, body.messages[0]!.value, body.messages[0]!.protocol], [subtopicOf(from), protocols.indexOf(from) + 20.5, stored[from]]);
    });
  }

  async function receivedOn(to: Protocol, from: Protocol): Promise<void> {
    const want: Seen = { subtopic: subtopicOf(from), payload: payloadOf(from) };
    if (to === 'http') {
      // HTTP has no live delivery: receiving on HTTP is reading the stored message over the API
      await eventually(async () => {
        const { stdout } = await run(binaries.curl!, ['-sS', '-H', `Authorization: Device ${device.secret}`, `${server.api}/channels/${channel}/messages?total=true&subtopic=${want.subtopic}&name=bridge:${from}`]);
        const body = JSON.parse(stdout) as { total: number; messages: { subtopic: string; name: string; unit: string; value: number; protocol: string }[] };
        assert.equal(body.total, 1);
        assert.deepEqual(body.messages.map((m) => [m.subtopic, m.name, m.unit, m.value, m.protocol]), [[want.subtopic, `bridge:${from}`, 'Cel', protocols.indexOf(from) + 20.5, stored[from]]]);
      });
      return;
    }
    if (to === 'coap') {
      // coap-client observes bridge/<from> exactly: receiving the payload there proves the subtopic
      await eventually(() => assert.ok(coapObserved.get(from)!.includes(want.payload), `coap-client has not printed ${want.payload}`));
      return;
    }
    await eventually(() => assert.deepEqual(seen[to].filter((s) => s.subtopic === want.subtopic && s.payload !== JSON.stringify([{ n: 'probe', v: 0 }])), [want]));
  }

  test('coap-client publishes 64 KiB block-wise (RFC 7959) and MQTT receives it whole', async () => {
    const dir = dataFolder();
    const blob = randomBytes(64 * 1024);
    writeFileSync(join(dir, 'blob.bin'), blob);
    const from = seen.mqtt3.length;
    const { stderr } = await run(binaries.coapClient!, ['-m', 'post', '-t', '42', '-b', '512', '-f', join(dir, 'blob.bin'), coapUrl('bridge/blobs')]);
    assert.equal(stderr.trim(), '');
    const body = await eventually(async () => {
      const res = await fetch(`${server.api}/channels/${channel}/messages?total=true&type=binary&subtopic=bridge/blobs`, { headers: { authorization: `Device ${device.secret}` }, signal: AbortSignal.timeout(2000) });
      const b = (await res.json()) as { total: number; messages: { payload: string; size: number; protocol: string }[] };
      assert.equal(b.total, 1);
      return b;
    });
    assert.equal(body.messages[0]!.size, blob.length);
    assert.ok(Buffer.from(body.messages[0]!.payload, 'base64').equals(blob));
    // mosquitto_sub prints payloads as text: compare the length of what it printed for that topic
    await eventually(() => assert.ok(seen.mqtt3.slice(from).some((s) => s.subtopic === 'bridge/blobs')));
  });

  for (const from of protocols) {
    for (const to of protocols) {
      if (from === to) continue;
      test(`${label[from]} → ${label[to]}: same payload and subtopic, then readable from the readers API`, async () => {
        await publishOnce(from);
        await receivedOn(to, from);
        await readBack(from);
      });
    }
  }
});
