import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from './app.js';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { assertProblem } from '../../test/helpers/problem.js';

const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

function assertStrictPolicy(res: { headers: Record<string, unknown> }, host: string): void {
  const csp = String(res.headers['content-security-policy']);
  const directives = new Map(csp.split(/;\s*/).map((d) => [d.split(' ')[0]!, d.split(' ').slice(1)]));
  assert.deepEqual(directives.get('default-src'), ["'self'"]);
  assert.deepEqual(directives.get('script-src'), ["'self'"], 'no inline script, no eval, no other origin');
  assert.deepEqual(directives.get('style-src'), ["'self'"]);
  assert.deepEqual(directives.get('connect-src'), ["'self'", `ws://${host}`]);
  assert.deepEqual(directives.get('frame-ancestors'), ["'none'"]);
  assert.deepEqual(directives.get('object-src'), ["'none'"]);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
}

describe('the web console at /', () => {
  let t: TestPlatform;
  let app: App;
  let bare: App;
  const dist = mkdtempSync(join(tmpdir(), 'fleetwire-console-'));
  const missing = join(dist, 'not-built');

  before(async () => {
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>Fleetwire</title><div id="root"></div><script type="module" src="./assets/index-Ab12Cd34.js"></script>');
    writeFileSync(join(dist, 'assets', 'index-Ab12Cd34.js'), 'console.log("fleetwire");');
    t = await startTestPlatform();
    app = await buildApp(t.platform, { console: { dir: dist } });
    bare = await buildApp(t.platform, { console: { dir: missing } });
    await Promise.all([app.ready(), bare.ready()]);
  });
  after(async () => {
    await Promise.all([app.close(), bare.close()]);
    await t.close();
    rmSync(dist, { recursive: true, force: true });
  });

  test('/ serves index.html, never cached, under a strict Content-Security-Policy', async () => {
    const res = await app.inject({ url: '/', headers: { ...html, host: 'fleet.example:8080' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /<div id="root">/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assertStrictPolicy(res, 'fleet.example:8080');
  });

  test('the WebSocket source follows the scheme the request came over', async () => {
    const tls = await startTestPlatform({ trustProxy: true });
    const proxied = await buildApp(tls.platform, { console: { dir: dist } });
    try {
      const res = await proxied.inject({ url: '/', headers: { ...html, host: 'fleet.example', 'x-forwarded-proto': 'https' } });
      assert.match(String(res.headers['content-security-policy']), /connect-src 'self' wss:\/\/fleet\.example;/);
      // a Host header that is not a host name is left out of the policy, not echoed into it
      const odd = await app.inject({ url: '/', headers: { ...html, host: "x; script-src 'unsafe-inline'" } });
      assert.match(String(odd.headers['content-security-policy']), /connect-src 'self';/);
      assert.doesNotMatch(String(odd.headers['content-security-policy']), /unsafe-inline/);
    } finally {
      await proxied.close();
      await tls.close();
    }
  });

  test('hashed assets are served with a year-long immutable cache', async () => {
    const res = await app.inject({ url: '/assets/index-Ab12Cd34.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.equal(res.body, 'console.log("fleetwire");');
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  test('a missing asset is a 404 problem; a path out of the folder is refused', async () => {
    assertProblem(await app.inject({ url: '/assets/nope.js' }), 404, 'route.not_found');
    for (const url of ['/assets/..%2findex.html', '/assets/%2e%2e/%2e%2e/package.json', '/assets/../../package.json']) {
      const res = await app.inject({ url });
      assert.ok(res.statusCode === 403 || res.statusCode === 404, `${url}: ${res.statusCode}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
      assert.doesNotMatch(res.body, /root|"name"/, url);
    }
  });

  test("a browser opening one of the console's own pages gets index.html (client-side routes)", async () => {
    for (const url of ['/organizations', '/organizations/0190d7a0-0000-7000-8000-000000000000/devices?sort=name', '/sign-in']) {
      const res = await app.inject({ url, headers: html });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.body, /<div id="root">/, url);
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.ok(res.headers['content-security-policy'], url);
    }
  });

  test('API clients keep their problems: unknown routes, other methods, files, and the API itself', async () => {
    assertProblem(await app.inject({ url: '/organizations' }), 404, 'route.not_found');
    assertProblem(await app.inject({ url: '/organizations', method: 'POST', headers: html, payload: {} }), 404, 'route.not_found');
    assertProblem(await app.inject({ url: '/favicon.ico', headers: html }), 404, 'route.not_found');
    // an API route opened in a browser is still the API
    assertProblem(await app.inject({ url: '/users/me', headers: html }), 401, 'auth.required');
    assert.equal((await app.inject({ url: '/health', headers: html })).json().status, 'ok');
  });

  test('the console routes are not in the API document', async () => {
    const paths = Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths);
    assert.ok(!paths.includes('/'));
    assert.ok(!paths.some((p) => p.startsWith('/assets')));
  });

  test('without a build, / says how to build the console, and the API works', async () => {
    const res = await bare.inject({ url: '/', headers: html });
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /console is not built/);
    assert.match(res.body, /npm run build/);
    assertStrictPolicy(res, 'localhost:80');
    assert.equal((await bare.inject({ url: '/organizations/x', headers: html })).statusCode, 503);
    assertProblem(await bare.inject({ url: '/assets/index-Ab12Cd34.js' }), 404, 'route.not_found');
    assert.equal((await bare.inject({ url: '/health' })).statusCode, 200);
  });
});
