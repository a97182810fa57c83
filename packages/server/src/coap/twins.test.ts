import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import coap from 'coap';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { eventually } from '../../test/helpers/eventually.js';
import { findProgram } from '../../test/helpers/services.js';
import { listenCoap, type CoapListener } from './index.js';

const run = promisify(execFile);
const coapClient = findProgram('coap-client', 'coap-client-notls', 'coap-client-openssl', 'coap-client-gnutls');

describe('twins over CoAP', () => {
  let t: TestPlatform;
  let server: CoapListener;
  let port: number;
  let org: string;
  let token: string;

  before(async () => {
    t = await startTestPlatform({ coapPort: 0 });
    server = await listenCoap(t.platform, { ackTimeoutMs: 100, maxRetransmit: 2 });
    port = server.address.port;
    token = (await t.user('coap-twins@example.com')).token;
    org = (await t.request('POST', '/orgs', { token, body: { name: 'coap-twins' } })).json().id;
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  const device = async (): Promise<{ id: string; secret: string }> => (await t.request('POST', `/orgs/${org}/devices`, { token, body: { name: 'sensor' } })).json();
  const desire = (id: string, desired: Record<string, unknown>) => t.request('PATCH', `/orgs/${org}/devices/${id}/twin`, { token, body: { desired } });
  const url = (d: { id: string; secret: string }, path = '') => `coap://127.0.0.1:${port}/devices/${d.id}/twin${path}?auth=${d.secret}`;

  test('coap-client reads the twin and reports state', async () => {
    assert.ok(coapClient, 'coap-client (Debian libcoap3-bin) is installed');
    const d = await device();
    await desire(d.id, { interval: 60 });
    const got = await run(coapClient, ['-m', 'get', url(d)]);
    const doc = JSON.parse(got.stdout);
    assert.deepEqual([doc.version, doc.desired, doc.delta], [1, { interval: 60 }, { interval: 60 }]);
    assert.equal(doc.tags, undefined);
    const posted = await run(coapClient, ['-m', 'post', '-t', '50', '-e', '{"reported":{"interval":60,"battery":87}}', url(d)]);
    assert.deepEqual(JSON.parse(posted.stdout), { version: 2, delta: {} });
    const stored = (await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json();
    assert.deepEqual(stored.reported, { interval: 60, battery: 87 });
    assert.equal((await t.request('GET', `/orgs/${org}/devices/${d.id}/twin/history`, { token })).json().changes[1].actor.kind, 'device');
  });

  test('observing the delta answers with the current one, then each new version', async () => {
    const d = await device();
    for (let i = 1; i <= 5; i++) await desire(d.id, { step: i });
    const seen: { version: number; state: Record<string, unknown> }[] = [];
    const req = coap.request({ hostname: '127.0.0.1', port, pathname: `/devices/${d.id}/twin/update/delta`, query: `auth=${d.secret}`, observe: true });
    const res = await new Promise<coap.IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.code, '2.05');
    res.on('data', (b: Buffer) => seen.push(JSON.parse(b.toString())));
    await eventually(() => assert.equal(seen.length, 1));
    assert.deepEqual(seen[0], { version: 5, state: { step: 5 } }, 'the catch-up: what the device missed, at its version');
    await desire(d.id, { step: 6 });
    await eventually(() => assert.equal(seen.length, 2));
    assert.deepEqual(seen[1], { version: 6, state: { step: 6 } });
    (res as unknown as { close(): void }).close();
  });

  test('bad updates get the CoAP error and change nothing', async () => {
    assert.ok(coapClient);
    const d = await device();
    const other = await device();
    const answer = async (args: string[]) => {
      // coap-client prints error responses (4.xx, 5.xx) on standard error
      const r = await run(coapClient, args).catch((e: { stdout: string; stderr: string }) => e);
      return `${r.stdout}${r.stderr}`.trim();
    };
    assert.match(await answer(['-m', 'post', '-t', '50', '-e', 'not json', url(d)]), /4\.00 twin.invalid_update/);
    assert.match(await answer(['-m', 'post', '-t', '50', '-e', '{"desired":{"a":1}}', url(d)]), /4\.03 twin.forbidden_section/);
    assert.match(await answer(['-m', 'post', '-t', '50', '-e', '{"reported":{"a":1},"version":7}', url(d)]), /4\.12 twin.version_conflict/);
    assert.match(await answer(['-m', 'get', `coap://127.0.0.1:${port}/devices/${other.id}/twin?auth=${d.secret}`]), /4\.04 device.not_found/);
    assert.equal((await t.request('GET', `/orgs/${org}/devices/${d.id}/twin`, { token })).json().version, 0);
  });
});
