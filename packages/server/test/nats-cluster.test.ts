// Several Fleetwire processes on one NATS JetStream and one data folder: what the bus promises
// across processes. Needs NATS at FLEETWIRE_TEST_NATS_URL (default nats://127.0.0.1:4222).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { MqttClient } from 'mqtt';
import { announcedPort, call, cleanupCli, cliEnv, cliFleet, dataFolder, login, startCli, type CliFleet, type Server } from './helpers/cli.js';
import { mqttClient, refusal } from './helpers/mqtt.js';
import { deviceRequest } from './helpers/tls.js';
import { readFileSync } from 'node:fs';
import { natsUrl, serviceAvailable } from './helpers/services.js';
import { eventually } from './helpers/eventually.js';

const available = await serviceAvailable('NATS with JetStream', natsUrl);
const admin = { email: 'admin@example.com', password: 'change-me-please' };

function publish(api: string, s: CliFleet, body: string, secret = s.device.secret): Promise<Response> {
  return fetch(`${api}/channels/${s.channel}/messages`, { method: 'POST', headers: { authorization: `Device ${secret}`, 'content-type': 'application/senml+json' }, body });
}

describe('Fleetwire on NATS JetStream, several processes', { skip: available === true ? false : available, concurrency: false }, () => {
  const streams: string[] = [];
  after(async () => {
    await cleanupCli();
    const nc = await connect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of streams) await jsm.streams.delete(s).catch(() => {});
    await nc.close();
  });

  function clusterEnv(dataDir: string) {
    const tag = randomBytes(4).toString('hex');
    streams.push(`FW_TEST_${tag}`);
    return cliEnv(dataDir, {
      FLEETWIRE_NATS_URL: natsUrl,
      FLEETWIRE_NATS_STREAM: `FW_TEST_${tag}`,
      FLEETWIRE_NATS_SUBJECT_PREFIX: `fwtest${tag}`,
      // what a killed writer held comes back after 1 s, not the default 5 s
      FLEETWIRE_NATS_ACK_WAIT: '1s',
      FLEETWIRE_ADMIN_EMAIL: admin.email,
      FLEETWIRE_ADMIN_PASSWORD: admin.password,
    });
  }

  test('no accepted message is lost when the process running the writer is killed', async () => {
    const env = clusterEnv(dataFolder());
    const first: Server = await startCli(env);
    const s = await cliFleet(first.api, admin);
    const accepted = new Set<number>();
    let next = 0;
    let killed = false;
    const worker = async () => {
      while (!killed && next < 2000) {
        const i = next++;
        try {
          const res = await publish(first.api, s, JSON.stringify([{ n: 'seq', v: i }]));
          if (res.status === 202) accepted.add(i);
        } catch {
          // the process died under this request: its fate is unknown, so it is not counted
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await eventually(() => assert.ok(accepted.size >= 300), 20_000);
    first.child.kill('SIGKILL');
    killed = true;
    await Promise.all(workers);
    assert.ok(accepted.size >= 300);

    const second = await startCli(env);
    // one login: polling with a login each time would run into the login rate limit
    const { token } = await login(second.api, admin.email, admin.password);
    const stored = await eventually(async () => {
      const r = await call<{ total: number }>(second.api, 'GET', `/channels/${s.channel}/messages?total=true&name=seq&limit=1`, { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.total >= accepted.size, `stored ${r.body.total} of ${accepted.size} accepted`);
      return r.body.total;
    }, 30_000, 200);
    // every accepted message is there, exactly once
    const values = new Map<number, number>();
    for (let offset = 0; offset < stored; offset += 1000) {
      const page = await call<{ messages: { value: number }[] }>(second.api, 'GET', `/channels/${s.channel}/messages?name=seq&limit=1000&offset=${offset}&dir=asc`, { token });
      for (const m of page.body.messages) values.set(m.value, (values.get(m.value) ?? 0) + 1);
    }
    for (const i of accepted) assert.equal(values.get(i), 1, `message ${i} stored ${values.get(i) ?? 0} times`);
    assert.ok([...values.values()].every((n) => n === 1), 'no duplicates');
    await second.stop();
  });

  test('processes share live messages and authorization changes', async () => {
    const env = clusterEnv(dataFolder());
    const a = await startCli(env);
    const b = await startCli(env);
    const s = await cliFleet(a.api, admin);
    // a WebSocket subscriber on A receives what is published through B
    const ws = new WebSocket(`${a.api.replace('http', 'ws')}/ws/channels/${s.channel}/messages`, { headers: { authorization: `Device ${s.device.secret}` } });
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    assert.equal((await publish(b.api, s, '[{"n":"x","v":1}]')).status, 202);
    await eventually(() => assert.deepEqual(got, ['[{"n":"x","v":1}]']));
    ws.close();
    // B caches the device's credentials; rotating the secret through A must refuse the old one on B at once
    const rotated = await call<{ secret: string }>(a.api, 'POST', `/orgs/${s.org}/devices/${s.device.id}/secret`, { token: s.token });
    assert.equal(rotated.status, 200);
    await eventually(async () => assert.equal((await publish(b.api, s, '[{"n":"x","v":2}]')).status, 401), 2000, 10);
    assert.equal((await publish(b.api, s, '[{"n":"x","v":3}]', rotated.body.secret)).status, 202);
    // disconnecting through B refuses the device on A
    await call(b.api, 'DELETE', `/orgs/${s.org}/connections`, { token: s.token, body: { device_ids: [s.device.id], channel_ids: [s.channel], types: ['publish'] } });
    await eventually(async () => assert.equal((await publish(a.api, s, '[{"n":"x","v":4}]', rotated.body.secret)).status, 403), 2000, 10);
    await a.stop();
    await b.stop();
  });

  test('MQTT across two broker processes: QoS kept, retained messages, share groups, session takeover and resume', async () => {
    const env = clusterEnv(dataFolder());
    const a = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-a' });
    const b = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-b' });
    const s = await cliFleet(a.api, admin);
    const urlA = `mqtt://127.0.0.1:${await announcedPort(a, 'MQTT listening')}`;
    const urlB = `mqtt://127.0.0.1:${await announcedPort(b, 'MQTT listening')}`;
    const opened: MqttClient[] = [];
    const device = { username: s.device.id, password: s.device.secret, protocolVersion: 5 as const };
    const topic = (sub: string) => `channels/${s.channel}/messages/${sub}`;
    const senml = (v: number) => JSON.stringify([{ n: 'x', v }]);
    try {
      // a subscriber on A gets what a client of B publishes, at the QoS it was published with
      const subA = await mqttClient(urlA, { ...device, clientId: 'sub-a' }, opened);
      await subA.subscribeAsync(topic('q/#'), { qos: 2 });
      const pubB = await mqttClient(urlB, { ...device, clientId: 'pub-b' }, opened);
      await pubB.publishAsync(topic('q/2'), senml(2), { qos: 2 });
      await pubB.publishAsync(topic('q/1'), senml(1), { qos: 1 });
      await eventually(() => assert.deepEqual(subA.received.map((m) => [m.topic, m.packet.qos]).sort(), [[topic('q/1'), 1], [topic('q/2'), 2]]));

      // a retained message published on A is sent by B to a new subscriber
      const pubA = await mqttClient(urlA, { ...device, clientId: 'pub-a' }, opened);
      await pubA.publishAsync(topic('state'), senml(42), { qos: 1, retain: true });
      const late = await mqttClient(urlB, { ...device, clientId: 'late-b' }, opened);
      await late.subscribeAsync(topic('state'), { qos: 1 });
      await eventually(() => assert.deepEqual(late.received.map((m) => [m.payload.toString(), m.packet.retain]), [[senml(42), true]]));

      // one share group with a member on each node: each message reaches exactly one of them
      const memberA = await mqttClient(urlA, { ...device, clientId: 'member-a' }, opened);
      const memberB = await mqttClient(urlB, { ...device, clientId: 'member-b' }, opened);
      await memberA.subscribeAsync(`$share/workers/${topic('jobs/#')}`, { qos: 1 });
      await memberB.subscribeAsync(`$share/workers/${topic('jobs/#')}`, { qos: 1 });
      for (let i = 0; i < 30; i++) assert.equal((await fetch(`${b.api}/channels/${s.channel}/messages/jobs/${i}`, { method: 'POST', headers: { authorization: `Device ${s.device.secret}`, 'content-type': 'application/senml+json' }, body: senml(i) })).status, 202);
      await eventually(() => assert.equal(memberA.received.length + memberB.received.length, 30));
      await new Promise((r) => setTimeout(r, 200));
      const jobs = [...memberA.received, ...memberB.received].map((m) => m.topic);
      assert.equal(new Set(jobs).size, 30, 'no job twice');
      assert.ok(memberA.received.length > 0 && memberB.received.length > 0, `both nodes served (${memberA.received.length}/${memberB.received.length})`);

      // a client connected to A that connects to B takes its session over: A closes the old connection
      const first = await mqttClient(urlA, { ...device, clientId: 'roamer', clean: false, properties: { sessionExpiryInterval: 3600 } }, opened);
      await first.subscribeAsync(topic('inbox/#'), { qos: 1 });
      const closed = new Promise<void>((r) => first.once('close', () => r()));
      const second = await mqttClient(urlB, { ...device, clientId: 'roamer', clean: false, properties: { sessionExpiryInterval: 3600 } }, opened);
      await closed;
      second.end(true); // gone without DISCONNECT: the session waits on B

      // messages for the offline session are kept and delivered when it resumes, whichever node it picks
      await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 3; i++) await pubA.publishAsync(topic(`inbox/${i}`), senml(i), { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
      const third = await mqttClient(urlA, { ...device, clientId: 'roamer', clean: false, properties: { sessionExpiryInterval: 3600 } }, opened);
      await eventually(() => assert.deepEqual(third.received.map((m) => m.topic), [0, 1, 2].map((i) => topic(`inbox/${i}`))));
      await pubB.publishAsync(topic('inbox/3'), senml(3), { qos: 1 });
      await eventually(() => assert.equal(third.received.length, 4));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(third.received.length, 4, 'nothing twice');
    } finally {
      for (const c of opened) c.end(true);
      await a.stop();
      await b.stop();
    }
  });

  test('a certificate revoked through one node disconnects its device from the other within a second, and it cannot connect again there', async () => {
    const env = clusterEnv(dataFolder());
    const a = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-a' });
    const b = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-b' });
    const opened: MqttClient[] = [];
    try {
      const s = await cliFleet(a.api, admin);
      const { token } = await login(a.api, admin.email, admin.password);
      const device = deviceRequest('/serialNumber=CLUSTER-1');
      const registered = await call(a.api, 'POST', `/orgs/${s.org}/registrations`, { token, body: { serial: 'CLUSTER-1', public_key: device.publicKey, channel_ids: [s.channel] } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const enrolled = await call<{ certificate: string; serial: string; root_ca: string }>(a.api, 'POST', '/enrol', { body: { csr: device.csr } });
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
      // node B's MQTT over TLS, with the certificate the platform issued it (signed by the same root)
      const urlB = `mqtts://127.0.0.1:${await announcedPort(b, 'MQTT over TLS listening')}`;
      const tlsOptions = { protocolVersion: 5 as const, ca: enrolled.body.root_ca, cert: enrolled.body.certificate, key: readFileSync(device.keyFile) };
      // node B trusts the organization's new issuing CA once A's broadcast reaches it: until then the certificate is not taken
      const onB = await eventually(() => mqttClient(urlB, { ...tlsOptions, clientId: 'cluster-1' }, opened), 5000, 100);
      await onB.subscribeAsync(`channels/${s.channel}/messages`, { qos: 1 });
      const closed = new Promise<number>((resolve) => onB.once('close', () => resolve(Date.now())));

      const revoked = await call<{ status: string }>(a.api, 'POST', `/orgs/${s.org}/certificates/${enrolled.body.serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
      const answered = Date.now();
      assert.equal(revoked.body.status, 'revoked');
      const at = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 5000))]);
      assert.ok(at - answered < 1000, `disconnected on node B ${at - answered} ms after node A answered the revocation`);
      assert.ok((await refusal(urlB, { ...tlsOptions, clientId: 'cluster-1-again' })) > 0, 'refused on node B');
    } finally {
      for (const c of opened) c.end(true);
      await a.stop();
      await b.stop();
    }
  });
});
