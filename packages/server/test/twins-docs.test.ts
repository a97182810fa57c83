// test-database: once (the subject is the documentation's commands, not the database)
// The shell examples of docs/twins.md, run as written (ports aside) against a real `fleetwire start`
// with mosquitto_rr/mosquitto_pub, curl and coap-client: each must succeed, and the twin must end
// up as the commands say.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { announcedPort, call, cleanupCli, cliEnv, cliFleet, dataFolder, startCli, type Server } from './helpers/cli.js';
import { findProgram } from './helpers/services.js';

const run = promisify(execFile);
const admin = { email: 'twin-docs@example.com', password: 'twin-docs-password' };
const doc = readFileSync(new URL('../../../docs/twins.md', import.meta.url), 'utf8');

let server: Server;
before(async () => {
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
});
after(cleanupCli);

/** The ```sh blocks of a section (## heading), as one script. */
function commands(section: string): string {
  const text = doc.slice(doc.indexOf(`## ${section}`)).split(/\n## /)[0]!;
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
}

test('the MQTT, HTTP and CoAP examples of docs/twins.md work as written', async () => {
  assert.ok(findProgram('mosquitto_rr'), 'mosquitto_rr (Debian mosquitto-clients)');
  assert.ok(findProgram('coap-client-notls'), 'coap-client-notls (Debian libcoap3-bin)');
  const mqttPort = await announcedPort(server, 'MQTT listening');
  const coapPort = await announcedPort(server, 'CoAP listening');
  const fleet = await cliFleet(server.api, admin, { devices: 1 });
  const { id: device, secret } = fleet.device;
  const env = { ...process.env, API: server.api, ORG: fleet.org, TOKEN: fleet.token, DEVICE: device, SECRET: secret };
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-twin-docs-'));
  const sh = (script: string) => run('bash', ['-euo', 'pipefail', '-c', script.replaceAll('-p 1883', `-p ${mqttPort}`).replaceAll('coap://127.0.0.1/', `coap://127.0.0.1:${coapPort}/`)], { cwd: dir, env, timeout: 30_000 });
  const twin = async () => (await call<Record<string, Record<string, unknown>>>(server.api, 'GET', `/orgs/${fleet.org}/devices/${device}/twin`, { token: fleet.token })).body;

  // the operator's side first (HTTP), then the device's over MQTT, then CoAP
  const http = commands('HTTP');
  assert.match(http, /curl -s -X PATCH/);
  const { stdout } = await sh(http);
  assert.match(stdout, /"status":412/, 'the conditional update at a stale version is refused');
  assert.deepEqual((await twin()).desired, { mode: 'eco' });
  assert.deepEqual((await twin()).tags, { site: 'berlin' });

  await call(server.api, 'PATCH', `/orgs/${fleet.org}/devices/${device}/twin`, { token: fleet.token, body: { desired: { turbo: true, ota: { url: 'https://example.com/fw.bin' } } } });
  await sh(commands('MQTT'));
  const got = JSON.parse(readFileSync(join(dir, 'twin.json'), 'utf8')) as { desired: Record<string, unknown> };
  assert.equal(got.desired.mode, 'eco', 'mosquitto_rr wrote the twin');
  const afterMqtt = await twin();
  assert.deepEqual(afterMqtt.reported, { mode: 'eco', firmware: '1.4.2' });
  assert.deepEqual(afterMqtt.desired, { mode: 'eco', turbo: true }, 'the device cleared ota');
  assert.equal((afterMqtt.rejected as Record<string, { reason: string }>)['/turbo']!.reason, 'this model has no turbo mode');
  assert.deepEqual(afterMqtt.delta, {});

  const coap = await sh(commands('CoAP'));
  assert.match(coap.stdout, /"desired":/);
  assert.equal((await twin()).reported!.battery, 87);

  const query = await sh(commands('Fleet queries'));
  assert.equal(JSON.parse(query.stdout).total, 0, 'desired and reported mode agree: nothing found');
});
