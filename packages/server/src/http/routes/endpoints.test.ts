import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { assertProblem } from '../../../test/helpers/problem.js';
import { buildApp, type App } from '../app.js';

describe('GET /endpoints', () => {
  let t: TestPlatform;
  let token: string;
  let listening: App; // an app told which ports its listeners bound, as startServer tells it

  before(async () => {
    t = await startTestPlatform();
    token = (await t.user('someone@example.com')).token;
    listening = await buildApp(t.platform, { listening: () => ({ mqtt: 18830, coap: 56830 }), mqttBroker: () => undefined });
    await listening.ready();
  });
  after(async () => {
    await listening.close();
    await t.close();
  });

  test('names the bound listeners at the host the request was sent to', async () => {
    const res = await listening.inject({ method: 'GET', url: '/endpoints', headers: { authorization: `Bearer ${token}`, host: 'fleet.local:8080' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), {
      http: `http://fleet.local:${t.platform.config.httpPort}`,
      mqtt: 'mqtt://fleet.local:18830',
      mqtt_ws: `ws://fleet.local:${t.platform.config.httpPort}/mqtt`,
      coap: 'coap://fleet.local:56830',
    });
  });

  test('a listener that is off is absent', async () => {
    const res = await t.request('GET', '/endpoints', { token, headers: { host: 'fleet.local' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(Object.keys(res.json()), ['http']);
  });

  test('FLEETWIRE_PUBLIC_URL gives the host and the HTTP base', async () => {
    const p = await startTestPlatform({ publicUrl: 'https://iot.example.org/fleet/' });
    try {
      const app = await buildApp(p.platform, { listening: () => ({ https: 8443, mqtt: 1883, mqtts: 8883 }), mqttBroker: () => undefined });
      try {
        const user = await p.user('public@example.com');
        const res = await app.inject({ method: 'GET', url: '/endpoints', headers: { authorization: `Bearer ${user.token}`, host: 'internal:9999' } });
        assert.deepEqual(res.json(), { http: 'https://iot.example.org/fleet', mqtt: 'mqtt://iot.example.org:1883', mqtts: 'mqtts://iot.example.org:8883', mqtt_ws: 'wss://iot.example.org/fleet/mqtt' });
      } finally {
        await app.close();
      }
    } finally {
      await p.close();
    }
  });

  test('needs a signed-in user', async () => {
    assertProblem(await t.request('GET', '/endpoints'), 401, 'auth.required');
  });
});
