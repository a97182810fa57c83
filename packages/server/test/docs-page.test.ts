// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The API reference page at /docs, as a reader sees it: a real `fleetwire start` process, opened in
// Debian's Chromium (headless) through playwright-core. The page must load /openapi.json, render its
// operations and load nothing from anywhere but the platform (no CDN).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { cleanupCli, cliEnv, dataFolder, startCli, type Server } from './helpers/cli.js';
import { programsAvailable } from './helpers/services.js';

const chromiumPath = process.env.FLEETWIRE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const available = programsAvailable({ chromium: existsSync(chromiumPath) ? chromiumPath : undefined }, 'chromium');

let server: Server | undefined;
let browser: Browser | undefined;
const shots = mkdtempSync(join(tmpdir(), 'fleetwire-docs-page-'));
after(async () => {
  await browser?.close();
  await server?.stop();
  await cleanupCli();
  rmSync(shots, { recursive: true, force: true });
});

test('/docs renders the operations of /openapi.json in Chromium, titled Fleetwire, with nothing from elsewhere', { skip: available === true ? false : available }, async () => {
  server = await startCli(cliEnv(dataFolder()));
  const documented = (await (await fetch(`${server.api}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const operations = Object.values(documented.paths).reduce((n, item) => n + Object.keys(item).length, 0);

  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  const requested: string[] = [];
  page.on('request', (req) => requested.push(req.url()));
  const failed: string[] = [];
  page.on('requestfailed', (req) => failed.push(`${req.url()}: ${req.failure()?.errorText}`));
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const spec = page.waitForResponse((res) => new URL(res.url()).pathname === '/openapi.json');
  const res = await page.goto(`${server.api}/docs`);
  assert.equal(res?.status(), 200);
  assert.equal((await spec).status(), 200, 'the page fetched /openapi.json');

  // Swagger UI draws one block per operation once the document is parsed
  await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 30_000 });
  await page.waitForFunction(`document.querySelectorAll('.opblock').length >= ${operations}`, undefined, { timeout: 30_000 });
  assert.equal(await page.locator('.opblock').count(), operations, 'one block per documented operation');
  assert.ok(await page.locator('.opblock-summary-path', { hasText: '/orgs/{org}/devices' }).count() > 0, 'the device routes are listed');
  assert.equal(await page.title(), 'Fleetwire API');
  const mark = await page.locator('.topbar img').getAttribute('src');
  assert.match(Buffer.from(String(mark).replace(/^data:image\/svg\+xml;base64,/, ''), 'base64').toString(), />Fleetwire</, 'our own mark in the top bar');
  await assert.doesNotReject(page.locator('.info .title', { hasText: 'Fleetwire API' }).waitFor({ timeout: 10_000 }), 'the document title is shown');

  const origin = new URL(server.api).origin;
  assert.deepEqual(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:')), [], 'everything comes from the platform');
  assert.ok(requested.some((url) => new URL(url).pathname === '/openapi.json'));
  assert.ok(!requested.some((url) => new URL(url).pathname === '/docs/json'), 'the page reads /openapi.json, not the plugin\'s copy');
  assert.deepEqual(failed, []);
  assert.deepEqual(errors, []);

  const file = join(shots, 'docs.png');
  await page.screenshot({ path: file, fullPage: false });
  const png = readFileSync(file);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  assert.ok(statSync(file).size > 20_000, `the screenshot is ${statSync(file).size} bytes: a blank page would be smaller`);
});
