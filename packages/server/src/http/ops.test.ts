import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { version } from '../core/version.js';
import { loadConfig } from '../core/config.js';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { createPlatform } from '../platform.js';
import { buildApp } from './app.js';
import { anotherHandle, openTestDatabase } from '../../test/helpers/database.js';
import { startTestPlatform, testPassword, type TestPlatform } from '../../test/helpers/platform.js';

const problemJson = 'application/problem+json; charset=utf-8';
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('operations endpoints', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform();
  });
  after(() => t.close());

  test('/health and /livez answer 200 with the version, without a token', async () => {
    for (const url of ['/health', '/livez']) {
      const res = await t.request('GET', url);
      assert.equal(res.statusCode, 200, url);
      assert.deepEqual(res.json(), { status: 'ok', version });
    }
  });

  test('/ready and /readyz answer 200 with the database kind', async () => {
    for (const url of ['/ready', '/readyz']) {
      const res = await t.request('GET', url);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { status: 'ready', database: t.platform.db.kind });
    }
  });

  test('/ready answers 503 service.unavailable when the database is closed', async () => {
    // A second handle on the same database, closed under a second app; the shared one stays open.
    const db = t.platform.db;
    const handle = await anotherHandle(db);
    const platform = await createPlatform(t.platform.config, { db: handle, clock: t.clock, log: createLogger('silent'), key: t.key });
    const app = await buildApp(platform);
    try {
      await handle.close();
      const res = await app.inject({ method: 'GET', url: '/ready' });
      assert.equal(res.statusCode, 503);
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
      assert.equal(res.headers['content-type'], problemJson);
      assert.equal(res.json().code, 'service.unavailable');
      assert.equal(res.json().status, 503);
      // liveness does not depend on the database
      assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });

  test('/metrics is Prometheus text with request counts and the authorization cache', async () => {
    await t.request('GET', '/health');
    const res = await t.request('GET', '/metrics');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /^# TYPE fleetwire_http_requests_total counter$/m);
    assert.match(res.body, /^fleetwire_http_requests_total\{method="GET",route="\/health",status="200"\} [1-9]\d*$/m);
    assert.match(res.body, /^fleetwire_authz_cache_entries\{cache="credentials"\} \d+$/m);
    assert.match(res.body, /^fleetwire_authz_cache_entries\{cache="access"\} \d+$/m);
    assert.match(res.body, /^fleetwire_process_cpu_user_seconds_total \d/m);
    assert.doesNotMatch(res.body, /fleetwire_process_process_|fleetwire_process_nodejs_/, 'one prefix, not two');
    assert.match(res.body, new RegExp(`^fleetwire_build_info\\{version="[^"]+",node="${process.versions.node.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
    for (const [, name, type] of res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      // prom-client's process and Node.js metrics keep its names (nodejs_active_resources_total is its gauge)
      if (/^fleetwire_(process|nodejs)_/.test(name!)) continue;
      if (type === 'gauge') assert.ok(!name!.endsWith('_total'), `${name}: a gauge named like a counter`);
      if (type === 'counter') assert.ok(name!.endsWith('_total'), `${name}: a counter without _total`);
    }
  });

  test('requests to unknown paths are counted under one label, not one per path', async () => {
    await t.request('GET', `/no/such/${randomBytes(4).toString('hex')}`);
    const body = (await t.request('GET', '/metrics')).body;
    assert.match(body, /^fleetwire_http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]\d*$/m);
    assert.doesNotMatch(body, /route="\/no\/such/);
  });

  test('/openapi.json is OpenAPI 3.1 with the device routes and the bearer scheme', async () => {
    const res = await t.request('GET', '/openapi.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.version, version);
    assert.deepEqual(Object.keys(doc.paths['/orgs/{org}/devices']).sort(), ['get', 'post']);
    assert.ok(doc.paths['/orgs/{org}/devices/{id}'].get);
    assert.equal(doc.components.securitySchemes.bearer.type, 'http');
    assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
  });

  type OpenApi = { paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>>; components: { securitySchemes: Record<string, unknown> } };
  /** Device messaging (`/channels/{id}/messages…`) and a device's own paths (`/devices/{id}/…`: heartbeat, twin) authenticate devices: see the next tests. */
  const isDeviceMessaging = (path: string) => path.startsWith('/channels/') || path.startsWith('/devices/');
  /** Operations a device calls with its platform certificate as TLS client certificate. */
  const byCertificate = ['POST /renew'];

  test('every management operation but the public ones declares bearer security', async () => {
    const doc = (await t.request('GET', '/openapi.json')).json() as OpenApi;
    const publicOps = ['GET /health', 'GET /livez', 'GET /ready', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'POST /auth/token', 'POST /auth/refresh', 'POST /auth/logout', 'POST /auth/signup', 'POST /enrol', 'GET /pki/orgs/{org}/crl', 'POST /pki/orgs/{org}/ocsp', 'GET /pki/orgs/{org}/ocsp/{request}',
      ...['', '/{org}'].flatMap((label) => [`GET /.well-known/est${label}/cacerts`, `GET /.well-known/est${label}/csrattrs`, `POST /.well-known/est${label}/simpleenroll`, `POST /.well-known/est${label}/simplereenroll`])];
    const open: string[] = [];
    let protectedCount = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (isDeviceMessaging(path)) continue;
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        if (op.security !== undefined && op.security.length === 0) open.push(name);
        else if (byCertificate.includes(name)) assert.deepEqual(op.security, [{ deviceCertificate: [] }], name);
        else {
          assert.deepEqual(op.security, [{ bearer: [] }], name);
          protectedCount++;
        }
      }
    }
    assert.deepEqual(open.sort(), [...publicOps].sort());
    assert.ok(protectedCount > 40, `expected the management API to be documented, found ${protectedCount} protected operations`);
  });

  test('device messaging operations declare the credentials they take', async () => {
    const doc = (await t.request('GET', '/openapi.json')).json() as OpenApi;
    const undeclared: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!isDeviceMessaging(path)) continue;
      for (const [method, op] of Object.entries(ops)) {
        const schemes = (op.security ?? []).flatMap((requirement) => Object.keys(requirement));
        if (schemes.length === 0 || schemes.some((s) => !(s in doc.components.securitySchemes))) undeclared.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(undeclared, []);
  });

  test('/docs serves the API reference as HTML', async () => {
    const res = await t.request('GET', '/docs');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /<html/i);
  });

  test('a sane X-Request-Id is echoed; others are replaced by a generated one', async () => {
    const given = await t.request('GET', '/health', { headers: { 'x-request-id': 'trace-42.a_b' } });
    assert.equal(given.headers['x-request-id'], 'trace-42.a_b');
    for (const bad of ['has spaces', 'x'.repeat(65), 'new\u00e9line']) {
      const res = await t.request('GET', '/health', { headers: { 'x-request-id': bad } });
      assert.match(String(res.headers['x-request-id']), uuidPattern, JSON.stringify(bad));
    }
    const a = await t.request('GET', '/health');
    const b = await t.request('GET', '/health');
    assert.match(String(a.headers['x-request-id']), uuidPattern);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    // problems carry the request id too
    const problem = await t.request('GET', '/nowhere', { headers: { 'x-request-id': 'find-me' } });
    assert.equal(problem.json().request_id, 'find-me');
  });

  test('an unknown route is a 404 route.not_found problem', async () => {
    const res = await t.request('GET', '/nowhere?x=1');
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers['content-type'], problemJson);
    const body = res.json();
    assert.equal(body.code, 'route.not_found');
    assert.equal(body.status, 404);
    assert.equal(body.instance, '/nowhere');
    assert.equal(body.type, 'https://fleetwire.dev/problems/route.not_found');
  });

  test('a body that is not JSON is a 400 request.invalid problem', async () => {
    const res = await t.request('POST', '/auth/token', { body: '{"email": "a@example.com", ', headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['content-type'], problemJson);
    assert.equal(res.json().code, 'request.invalid');
  });
});

describe('logs', () => {
  /** A platform whose log lines are kept, at `level`. */
  async function loggedPlatform(level: string) {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const { db, cleanup } = await openTestDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-data-'));
    const config = loadConfig({}, { dataDir, logLevel: level });
    const platform = await createPlatform(config, { db, clock: new ManualClock(Date.now()), log: createLogger(level, sink), key: randomBytes(32) });
    const app = await buildApp(platform);
    return {
      platform, app, lines,
      async close() {
        await app.close();
        await platform.close();
        await cleanup();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }

  for (const level of ['info', 'debug']) {
    test(`at ${level} level, management requests are logged${level === 'info' ? ', message publishes are not' : ' and so are message publishes'}`, async () => {
      const p = await loggedPlatform(level);
      try {
        await p.platform.users.create({ email: 'ops@example.com', password: testPassword, role: 'admin' });
        const send = (url: string, body: unknown, token: string) => p.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: body as object });
        const token = (await p.app.inject({ method: 'POST', url: '/auth/token', payload: { email: 'ops@example.com', password: testPassword } })).json().access_token as string;
        const org = (await send('/orgs', { name: 'Ops' }, token)).json().id as string;
        const device = (await send(`/orgs/${org}/devices`, { name: 'd' }, token)).json();
        const channel = (await send(`/orgs/${org}/channels`, { name: 'c' }, token)).json().id as string;
        assert.equal((await send(`/orgs/${org}/connections`, { device_ids: [device.id], channel_ids: [channel], types: ['publish'] }, token)).statusCode, 204);
        const published = await p.app.inject({ method: 'POST', url: `/channels/${channel}/messages/lab`, headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/senml+json' }, payload: '[{"n":"t","v":1}]' });
        assert.equal(published.statusCode, 202);
        const log = p.lines.join('');
        assert.match(log, new RegExp(`"url":"/orgs/${org}/channels"`), 'a management request is logged');
        if (level === 'info') assert.ok(!log.includes(`/channels/${channel}/messages`), 'a publish is not logged at info');
        else assert.match(log, new RegExp(`"url":"/channels/${channel}/messages/lab"`), 'a publish is logged at debug');
      } finally {
        await p.close();
      }
    });
  }

  test('passwords, device secrets, tokens and Authorization headers never reach the log', async () => {
    const logged = await loggedPlatform('info');
    const { platform, app, lines } = logged;
    try {
      await platform.users.create({ email: 'ops@example.com', password: testPassword, role: 'admin' });
      const send = (method: 'GET' | 'POST', url: string, body?: unknown, token?: string) =>
        app.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body === undefined ? {} : { payload: body as object }) });

      const login = await send('POST', '/auth/token', { email: 'ops@example.com', password: testPassword });
      assert.equal(login.statusCode, 200);
      const { access_token: accessToken, refresh_token: refreshToken } = login.json();
      const org = (await send('POST', '/orgs', { name: 'Ops' }, accessToken)).json();
      const device = await send('POST', `/orgs/${org.id}/devices`, { name: 'probe' }, accessToken);
      assert.equal(device.statusCode, 201);
      const deviceSecret = device.json().secret as string;
      const refreshed = await send('POST', '/auth/refresh', { refresh_token: refreshToken });
      const newRefreshToken = refreshed.json().refresh_token as string;
      // failures are logged too: wrong password, bad token, a secret in an invalid body, an unknown route
      await send('POST', '/auth/token', { email: 'ops@example.com', password: `${testPassword}-wrong` });
      await send('GET', '/users/me', undefined, `${accessToken}x`);
      await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/json' }, payload: `{"password": "${testPassword}"` });
      await send('POST', '/auth/refresh', { refresh_token: refreshToken, extra: deviceSecret });
      await send('GET', `/nowhere`, undefined, accessToken);
      // clients that cannot set headers (WebSocket) send credentials in the query string
      await send('GET', `/no/such/route?authorization=${encodeURIComponent(deviceSecret)}&x=1`);
      await send('GET', `/nowhere?token=${accessToken}`);

      const log = lines.join('');
      assert.match(log, /"msg":"device created"/, 'the log captured the requests');
      assert.match(log, /"url":"\/no\/such\/route\?authorization=\[redacted\]&x=1"/, 'the query string is logged, its credentials redacted');
      for (const [what, value] of Object.entries({ password: testPassword, deviceSecret, refreshToken, newRefreshToken, accessToken })) {
        assert.ok(!log.includes(value), `the log contains the ${what}`);
      }
      assert.doesNotMatch(log, /Bearer /);
    } finally {
      await logged.close();
    }
  });
});
