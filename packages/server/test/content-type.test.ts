// A channel's content type, end to end: Fleetwire started as an operator starts it, real clients
// that send no content type (mosquitto_pub over MQTT 3.1.1 and over MQTT 5 without the Content Type
// property, libcoap's coap-client without Content-Format, a WebSocket frame without
// `?content_type=`), on a channel of each content type. What the channel does not take is refused
// the protocol's way; what it takes is stored and read back as that type.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { call, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, announcedPort, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';
import { findProgram, programsAvailable } from './helpers/services.js';

const run = promisify(execFile);

const binaries = {
  mosquittoPub: findProgram('mosquitto_pub'),
  coapClient: findProgram('coap-client', 'coap-client-notls', 'coap-client-openssl', 'coap-client-gnutls'),
};
const available = programsAvailable(binaries, 'mosquitto-clients libcoap3-bin');

const protocols = ['mqtt3', 'mqtt5', 'coap', 'ws'] as const;
type Protocol = (typeof protocols)[number];
/** As stored with the message. */
const storedAs: Record<Protocol, string> = { mqtt3: 'mqtt', mqtt5: 'mqtt', coap: 'coap', ws: 'ws' };

/** What a client saw of its publish: taken, or refused with what the protocol says. */
type Outcome = { taken: true } | { taken: false; said: string };

describe('a channel content type for payloads that come without one', { skip: available === true ? false : available }, () => {
  let server: Server;
  let mqttPort: number;
  let coapPort: number;
  let token: string;
  let org: string;
  let device: { id: string; secret: string };
  const channels = {} as Record<'senml' | 'json' | 'opaque', string>;
  const sockets: WebSocket[] = [];

  const topic = (channel: string, subtopic: string) => `channels/${channel}/messages/${subtopic}`;

  /** mosquitto_pub with -d: its debug lines say whether a PUBACK came, and with which reason code. */
  async function mosquittoPub(version: 'mqttv311' | 'mqttv5', channel: string, subtopic: string, payload: string, properties: string[] = []): Promise<Outcome> {
    const args = ['-d', '-h', '127.0.0.1', '-p', String(mqttPort), '-V', version, '-u', device.id, '-P', device.secret, '-q', '1', '-t', topic(channel, subtopic), ...properties, '-m', payload];
    const out = await run(binaries.mosquittoPub!, args).then(
      (r) => r.stdout + r.stderr,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    const puback = /received PUBACK \(Mid: \d+(?:, RC:(\d+))?\)/.exec(out);
    if (puback && (puback[1] === undefined || Number(puback[1]) < 0x80)) return { taken: true };
    // MQTT 5: the PUBACK's reason code; MQTT 3.1.1 has none to give, so the server closes the connection [MQTT-3.3.5-2]
    return { taken: false, said: puback ? `PUBACK ${puback[1]}` : `no PUBACK: ${out.trim().split('\n').at(-1)}` };
  }

  const publish: Record<Protocol, (channel: string, subtopic: string, payload: string) => Promise<Outcome>> = {
    mqtt3: (channel, subtopic, payload) => mosquittoPub('mqttv311', channel, subtopic, payload),
    mqtt5: (channel, subtopic, payload) => mosquittoPub('mqttv5', channel, subtopic, payload),
    async coap(channel, subtopic, payload) {
      // no -t: no Content-Format option
      const { stdout, stderr } = await run(binaries.coapClient!, ['-m', 'post', '-e', payload, `coap://127.0.0.1:${coapPort}/${topic(channel, subtopic)}?auth=${device.secret}`]);
      // coap-client prints error responses (4.xx, 5.xx) on standard error, with their diagnostic payload
      const said = (stderr + stdout).trim();
      return said === '' ? { taken: true } : { taken: false, said };
    },
    async ws(channel, subtopic, payload) {
      const ws = new WebSocket(`${server.api.replace('http', 'ws')}/ws/${topic(channel, subtopic)}`, { headers: { authorization: `Device ${device.secret}` } });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      ws.send(payload);
      // frames are not acknowledged: a refused one closes the socket, a taken one gets stored
      let settled = false;
      const stored = eventually(async () => {
        if (settled) return;
        assert.ok((await storedCount(channel, subtopic)) > 0, 'not stored yet');
      }).then(() => undefined);
      const refused = await Promise.race([closed, stored]).finally(() => (settled = true));
      ws.close();
      return refused === undefined ? { taken: true } : { taken: false, said: `close ${refused.code} ${refused.reason}` };
    },
  };

  /** What the protocol says when the payload does not match the channel's content type. */
  function assertRefusedAsInvalid(p: Protocol, outcome: Outcome): void {
    assert.equal(outcome.taken, false, `${p}: the payload should be refused`);
    const { said } = outcome as { said: string };
    switch (p) {
      case 'mqtt3':
        assert.match(said, /^no PUBACK/, said);
        break;
      case 'mqtt5':
        assert.equal(said, 'PUBACK 153', 'Payload format invalid (0x99)');
        break;
      case 'coap':
        assert.match(said, /4\.00/, said);
        assert.match(said, /message\.invalid_payload/, said);
        break;
      case 'ws':
        assert.match(said, /^close 1007 message\.invalid_payload/, said);
        break;
    }
  }

  async function read<T>(channel: string, query: string): Promise<T> {
    const res = await fetch(`${server.api}/channels/${channel}/messages?total=true&${query}`, { headers: { authorization: `Device ${device.secret}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as T;
  }

  /** Messages stored at a subtopic, of every kind: SenML records, JSON documents, opaque payloads. */
  async function storedCount(channel: string, subtopic: string): Promise<number> {
    let n = 0;
    for (const type of ['senml', 'json', 'binary']) n += (await read<{ total: number }>(channel, `type=${type}&subtopic=${subtopic}`)).total;
    return n;
  }

  async function nothingStored(channel: string, subtopic: string): Promise<void> {
    assert.equal(await storedCount(channel, subtopic), 0, `nothing at ${subtopic}`);
  }

  before(async () => {
    server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: 'types@example.com', FLEETWIRE_ADMIN_PASSWORD: 'types-password-1' }));
    mqttPort = await announcedPort(server, 'MQTT listening');
    coapPort = await announcedPort(server, 'CoAP listening');
    const fleet = await cliFleet(server.api, { email: 'types@example.com', password: 'types-password-1' });
    ({ token, org, device } = fleet);
    channels.senml = fleet.channel;
    for (const [name, content_type] of [['json', 'application/json'], ['opaque', 'application/octet-stream']] as const) {
      const res = await call<{ id: string; content_type: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name, content_type } });
      assert.equal(res.status, 201);
      assert.equal(res.body.content_type, content_type);
      channels[name] = res.body.id;
    }
    assert.equal((await call(server.api, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device.id], channel_ids: [channels.json, channels.opaque], types: ['publish', 'subscribe'] } })).status, 204);
    const senml = await call<{ content_type: string }>(server.api, 'GET', `/orgs/${org}/channels/${channels.senml}`, { token });
    assert.equal(senml.body.content_type, 'application/senml+json', 'a channel made without one is SenML JSON');
  });

  after(async () => {
    for (const s of sockets) s.terminate();
    if (server) assert.equal(await server.stop(), 0);
    await cleanupCli();
  });

  for (const p of protocols) {
    test(`${p}, SenML JSON channel: a payload that is not SenML is refused the protocol's way; SenML is stored`, async () => {
      assertRefusedAsInvalid(p, await publish[p](channels.senml, `${p}/bad`, 'hello'));
      assert.deepEqual(await publish[p](channels.senml, `${p}/good`, JSON.stringify([{ n: `${p}:temp`, v: 21.5 }])), { taken: true });
      const stored = await eventually(async () => {
        const r = await read<{ total: number; messages: { name: string; value: number; protocol: string }[] }>(channels.senml, `subtopic=${p}/good`);
        assert.equal(r.total, 1);
        return r.messages[0]!;
      });
      assert.deepEqual([stored.name, stored.value, stored.protocol], [`${p}:temp`, 21.5, storedAs[p]]);
      await nothingStored(channels.senml, `${p}/bad`);
    });

    test(`${p}, JSON channel: JSON is stored as a document; a payload that is not JSON is refused`, async () => {
      assertRefusedAsInvalid(p, await publish[p](channels.json, `${p}/bad`, 'hello'));
      assert.deepEqual(await publish[p](channels.json, `${p}/good`, JSON.stringify({ temp: 19, via: p })), { taken: true });
      const docs = await eventually(async () => {
        const r = await read<{ total: number; messages: { document: unknown; protocol: string }[] }>(channels.json, `type=json&subtopic=${p}/good`);
        assert.equal(r.total, 1);
        return r.messages;
      });
      assert.deepEqual(docs.map((d) => [d.document, d.protocol]), [[{ temp: 19, via: p }, storedAs[p]]]);
      await nothingStored(channels.json, `${p}/bad`);
    });

    test(`${p}, opaque channel: "hello" is stored as it came, read back as base64 in JSON and raw with type=binary`, async () => {
      assert.deepEqual(await publish[p](channels.opaque, `${p}/hello`, 'hello'), { taken: true });
      const listed = await eventually(async () => {
        const r = await read<{ total: number; messages: { payload: string; content_type: string; protocol: string; truncated: boolean }[] }>(channels.opaque, `type=binary&subtopic=${p}/hello`);
        assert.equal(r.total, 1);
        return r.messages[0]!;
      });
      assert.deepEqual([listed.payload, listed.content_type, listed.protocol, listed.truncated], [Buffer.from('hello').toString('base64'), 'application/octet-stream', storedAs[p], false]);
      const raw = await fetch(`${server.api}/channels/${channels.opaque}/messages?type=binary&format=raw&subtopic=${p}/hello`, { headers: { authorization: `Device ${device.secret}` }, signal: AbortSignal.timeout(5000) });
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get('content-type'), 'application/octet-stream');
      assert.equal(await raw.text(), 'hello');
    });
  }

  test('MQTT 5 with a Content Type property: the type it carries wins over the channel\'s', async () => {
    assert.deepEqual(await mosquittoPub('mqttv5', channels.senml, 'typed', 'not senml', ['-D', 'publish', 'content-type', 'text/plain']), { taken: true });
    const stored = await eventually(async () => {
      const r = await read<{ total: number; messages: { payload: string; content_type: string }[] }>(channels.senml, 'type=binary&subtopic=typed');
      assert.equal(r.total, 1);
      return r.messages[0]!;
    });
    assert.deepEqual([Buffer.from(stored.payload, 'base64').toString(), stored.content_type], ['not senml', 'text/plain']);
  });

  test('a channel whose content type is changed takes the next plain message by the new one', async () => {
    // the device's access to the channel is cached from the publishes above: the change must reach the cache
    assertRefusedAsInvalid('mqtt3', await mosquittoPub('mqttv311', channels.json, 'changed', 'hello'));
    const patched = await call<{ content_type: string }>(server.api, 'PATCH', `/orgs/${org}/channels/${channels.json}`, { token, body: { content_type: 'application/octet-stream' } });
    assert.deepEqual([patched.status, patched.body.content_type], [200, 'application/octet-stream']);
    assert.deepEqual(await mosquittoPub('mqttv311', channels.json, 'changed', 'hello'), { taken: true });
    await eventually(async () => assert.equal((await read<{ total: number }>(channels.json, 'type=binary&subtopic=changed')).total, 1));
  });
});
