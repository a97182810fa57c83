// The recipe of docs/coap.md "CoAP over DTLS": socat terminates DTLS and relays datagrams to the
// plain CoAP listener; libcoap's coap-client publishes and observes through it with coaps://.
// Needs socat, openssl and coap-client-openssl (Debian: socat openssl libcoap3-bin); in CI
// (FLEETWIRE_REQUIRE_SERVICES=1) a missing one fails, elsewhere the test is skipped.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { smallFleet, type Fleet } from '../../test/helpers/fleet.js';
import { findProgram, programsAvailable } from '../../test/helpers/services.js';
import { selfSignedCertificate } from '../../test/helpers/tls.js';
import { listenCoap, type CoapListener } from './index.js';

const run = promisify(execFile);
const available = programsAvailable({ socat: findProgram('socat'), openssl: findProgram('openssl'), 'coap-client-openssl': findProgram('coap-client-openssl') }, 'socat openssl libcoap3-bin');

/** A UDP port nobody uses right now (socat cannot report the one it picked). */
async function freeUdpPort(): Promise<number> {
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}

describe('CoAP behind a DTLS-terminating proxy (socat)', { skip: available === true ? false : available }, () => {
  let t: TestPlatform;
  let coap: CoapListener;
  let fleet: Fleet;
  let proxy: { dir: string; certFile: string; keyFile: string };
  let proxyPort: number;
  const children: ChildProcess[] = [];

  before(async () => {
    t = await startTestPlatform({ coapPort: 0 });
    coap = await listenCoap(t.platform);
    fleet = await smallFleet(t, 'dtls-owner@example.com');
    // the proxy's certificate with the names of the openssl command in docs/coap.md, so that coap-client -R checks what the recipe makes
    proxy = selfSignedCertificate({ subject: '/CN=127.0.0.1', altNames: 'IP:127.0.0.1' });
    proxyPort = await freeUdpPort();
    const socat = spawn('socat', ['-T', '600', `OPENSSL-DTLS-SERVER:${proxyPort},bind=127.0.0.1,cert=${proxy.certFile},key=${proxy.keyFile},verify=0,fork`, `UDP:127.0.0.1:${coap.address.port}`], { stdio: 'ignore', detached: true });
    children.push(socat);
    // socat binds at once; give it a moment before the first handshake
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(socat.exitCode, null, 'socat is running');
  });
  after(async () => {
    // socat forks a relay per client: end its whole process group
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c === children[0] ? -c.pid : c.pid, 'SIGKILL');
    await coap.close();
    await t.close();
    rmSync(proxy.dir, { recursive: true, force: true });
  });

  const url = (subtopic: string) => `coaps://127.0.0.1:${proxyPort}/channels/${fleet.channel}/messages/${subtopic}?auth=${fleet.device.secret}`;

  test('coap-client publishes over DTLS; the message is stored with protocol coap', async () => {
    const { stderr } = await run('coap-client-openssl', ['-m', 'post', '-t', '110', '-e', '[{"n":"dtls","v":7}]', '-R', proxy.certFile, url('secure')]);
    assert.equal(stderr.trim(), '');
    await eventually(async () => {
      const r = (await t.request('GET', `/channels/${fleet.channel}/messages?total=true&name=dtls`, { token: fleet.ownerToken })).json();
      assert.equal(r.total, 1);
      assert.deepEqual([r.messages[0].subtopic, r.messages[0].value, r.messages[0].protocol], ['secure', 7, 'coap']);
    });
  });

  test('coap-client observes over DTLS and receives notifications', async () => {
    const observer = spawn('coap-client-openssl', ['-m', 'get', '-s', '20', '-B', '20', '-R', proxy.certFile, url('secure/alerts')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(observer);
    let out = '';
    observer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(() => assert.equal(coap.endpoint.observers.size, 1), 10_000);
    const res = await t.request('POST', `/channels/${fleet.channel}/messages/secure/alerts`, { body: 'door open', headers: { authorization: `Device ${fleet.device.secret}`, 'content-type': 'text/plain' } });
    assert.equal(res.statusCode, 202);
    await eventually(() => assert.equal(out, 'door open'), 5000);
    observer.kill('SIGTERM');
  });
});

