// Presence across two Fleetwire processes on one database and NATS: a takeover to the other node
// shows no offline, and a node killed outright leaves its devices offline as the survivor sees it.
// Needs NATS at FLEETWIRE_TEST_NATS_URL (default nats://127.0.0.1:4222).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { MqttClient } from 'mqtt';
import { announcedPort, call, cleanupCli, cliEnv, cliFleet, dataFolder, login, startCli } from './helpers/cli.js';
import { mqttClient } from './helpers/mqtt.js';
import { deviceRequest } from './helpers/tls.js';
import { natsUrl, serviceAvailable } from './helpers/services.js';
import { eventually } from './helpers/eventually.js';

const available = await serviceAvailable('NATS with JetStream', natsUrl);
const admin = { email: 'admin@example.com', password: 'change-me-please' };
const nodeTimeoutMs = 2000;

type Presence = { state: string; reason: string | null; node: string | null; connections: { client_id: string; node: string }[] };
type History = { changes: { state: string; reason: string | null; node: string | null }[] };

describe('presence across two nodes', { skip: available === true ? false : available, concurrency: false }, () => {
  const streams: string[] = [];
  after(async () => {
    await cleanupCli();
    const nc = await connect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of streams) await jsm.streams.delete(s).catch(() => {});
    await nc.close();
  });

  function clusterEnv() {
    const tag = randomBytes(4).toString('hex');
    streams.push(`FW_TEST_${tag}`);
    return cliEnv(dataFolder(), {
      FLEETWIRE_NATS_URL: natsUrl,
      FLEETWIRE_NATS_STREAM: `FW_TEST_${tag}`,
      FLEETWIRE_NATS_SUBJECT_PREFIX: `fwtest${tag}`,
      FLEETWIRE_ADMIN_EMAIL: admin.email,
      FLEETWIRE_ADMIN_PASSWORD: admin.password,
      FLEETWIRE_PRESENCE_NODE_TIMEOUT: `${nodeTimeoutMs}ms`,
      FLEETWIRE_PRESENCE_FLUSH_INTERVAL: '50ms',
    });
  }

  test('a takeover from node A to node B shows no offline; killing node B (SIGKILL) leaves the device offline, connection_lost, within the window as A sees it', async () => {
    const env = clusterEnv();
    const a = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-a' });
    const b = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-b' });
    const opened: MqttClient[] = [];
    try {
      const s = await cliFleet(a.api, admin, { devices: 2 });
      const { token } = await login(b.api, admin.email, admin.password);
      const urlA = `mqtt://127.0.0.1:${await announcedPort(a, 'MQTT listening')}`;
      const urlB = `mqtt://127.0.0.1:${await announcedPort(b, 'MQTT listening')}`;
      const presence = async (api: string, device: string) => (await call<Presence>(api, 'GET', `/orgs/${s.org}/devices/${device}/presence`, { token })).body;
      const history = async (api: string, device: string) => (await call<History>(api, 'GET', `/orgs/${s.org}/devices/${device}/presence/history`, { token })).body;

      // a persistent session and a clean one, each roaming from A to B
      for (const [i, persistent] of [[0, true], [1, false]] as const) {
        const d = s.devices[i]!;
        const options = { protocolVersion: 5 as const, username: d.id, password: d.secret, clientId: `roamer-${i}`, clean: !persistent, properties: { sessionExpiryInterval: persistent ? 3600 : 0 } };
        const first = await mqttClient(urlA, options, opened);
        await eventually(async () => assert.equal((await presence(b.api, d.id)).node, 'node-a'));
        const closed = new Promise<void>((r) => first.once('close', () => r()));
        await mqttClient(urlB, options, opened);
        await closed;
        // A writes the end of the old connection in its own time: online all along, on B once it has
        const onB = await eventually(async () => {
          const p = await presence(a.api, d.id);
          assert.equal(p.state, 'online');
          assert.deepEqual(p.connections.map((c) => [c.client_id, c.node]), [[`roamer-${i}`, 'node-b']]);
          return p;
        });
        assert.equal(onB.node, 'node-b');
        const h = await history(a.api, d.id);
        assert.deepEqual(h.changes.map((c) => c.state), ['online'], `${persistent ? 'persistent' : 'clean'} session: no offline in the history`);
        assert.equal((await presence(a.api, d.id)).state, 'online');
      }

      // node B dies with both devices connected to it
      b.child.kill('SIGKILL');
      const killed = Date.now();
      for (const d of s.devices) {
        const p = await eventually(async () => {
          const p = await presence(a.api, d.id);
          assert.equal(p.state, 'offline');
          return p;
        }, 4 * nodeTimeoutMs, 50);
        assert.equal(p.reason, 'connection_lost');
        assert.deepEqual(p.connections, []);
      }
      const took = Date.now() - killed;
      // the window, and a third of it for the sweep that finds it, and a flush
      assert.ok(took < nodeTimeoutMs * 1.34 + 500, `offline ${took} ms after the kill`);
      const h = await history(a.api, s.device.id);
      assert.deepEqual(h.changes.map((c) => [c.state, c.reason]), [['online', null], ['offline', 'connection_lost']]);
    } finally {
      for (const c of opened) c.end(true);
      await a.stop();
      await b.stop();
    }
  });

  test('a device whose certificate is revoked through node A is offline with reason revoked, from node B', async () => {
    const env = clusterEnv();
    const a = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-a' });
    const b = await startCli({ ...env, FLEETWIRE_NODE_ID: 'node-b' });
    const opened: MqttClient[] = [];
    try {
      const s = await cliFleet(a.api, admin);
      const { token } = await login(a.api, admin.email, admin.password);
      const device = deviceRequest('/serialNumber=PRESENCE-1');
      const registered = await call(a.api, 'POST', `/orgs/${s.org}/registrations`, { token, body: { serial: 'PRESENCE-1', public_key: device.publicKey, channel_ids: [s.channel] } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const enrolled = await call<{ certificate: string; serial: string; root_ca: string; device_id: string }>(a.api, 'POST', '/enrol', { body: { csr: device.csr } });
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
      const urlB = `mqtts://127.0.0.1:${await announcedPort(b, 'MQTT over TLS listening')}`;
      // node B trusts the organization's new issuing CA once A's broadcast reaches it: until then the certificate is not taken
      const onB = await eventually(() => mqttClient(urlB, { protocolVersion: 5, ca: enrolled.body.root_ca, cert: enrolled.body.certificate, key: readFileSync(device.keyFile), clientId: 'presence-1' }, opened), 5000, 100);
      const deviceId = enrolled.body.device_id;
      const presence = async () => (await call<Presence>(a.api, 'GET', `/orgs/${s.org}/devices/${deviceId}/presence`, { token })).body;
      await eventually(async () => assert.equal((await presence()).state, 'online'));
      const closed = new Promise<void>((r) => onB.once('close', () => r()));
      const revoked = await call<{ status: string }>(a.api, 'POST', `/orgs/${s.org}/certificates/${enrolled.body.serial}/revoke`, { token, body: { reason: 'keyCompromise' } });
      assert.equal(revoked.body.status, 'revoked');
      await closed;
      const p = await eventually(async () => {
        const p = await presence();
        assert.equal(p.state, 'offline');
        return p;
      });
      assert.equal(p.reason, 'revoked');
      assert.equal(p.node, 'node-b');
    } finally {
      for (const c of opened) c.end(true);
      await a.stop();
      await b.stop();
    }
  });
});
