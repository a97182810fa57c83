// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The console's data pages end to end. A device publishes SenML over HTTP to a real `fleetwire
// start`; the admin finds the records in the channel's stored messages (filtered by name, paged,
// oldest first) and downloads the same filter as CSV; draws a chart of them (uPlot loaded only
// then, under the platform's Content-Security-Policy) whose caption names the right max; reads a
// JSON channel's documents; and views and deletes dead letters (set aside through the writer's own
// repository, as the writer does with a message it cannot store). A viewer sees no dead letter and
// no delete control. Each page is checked with axe-core and its screenshot written to docs/images/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { call, cliEnv, cliFleet, dataFolder, login, startCli, type Server } from './helpers/cli.js';
import { buildConsole, checkPage, consoleTestsAvailable as available, launchChromium, openPage, signIn, closedAfterTests } from './helpers/console.js';
import { Database, sqliteUrlFor } from '../src/db/index.js';
import { DeadLetterRepository } from '../src/storage/dead-letters.js';
import { uuidv7 } from '../src/core/ids.js';

const admin = { email: 'admin@example.org', password: 'console-data-admin' };
const viewer = { email: 'viewer@example.org', password: 'console-data-viewer' };

let server: Server | undefined;
let browser: Browser | undefined;
closedAfterTests(() => ({ browser, server }));

/** Records the page's Content-Security-Policy violations (a blocked style or script), from its first script on. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  // the test's own script, as text: the server's TypeScript has no DOM types
  await page.addInitScript({
    content: `window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`,
  });
  return async () => (await page.evaluate('window.cspViolations')) as string[];
}

/** Unix seconds as a datetime-local input's value (the browser runs in this process's time zone). */
function localDateTime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

test("a channel's stored messages are filtered, paged, downloaded and charted; dead letters are viewed and deleted; a viewer sees none", { skip: available === true ? false : available, timeout: 180_000 }, async () => {
  buildConsole();
  const data = dataFolder();
  server = await startCli(cliEnv(data, { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_SIGNUP: 'true' }));
  const origin = server.api;
  const fleet = await cliFleet(origin, admin, { types: ['publish'] });
  const { org, channel, device, token } = fleet;

  // 30 temperatures a minute apart (1 … 30) and 15 humidities, over the last half hour, in one SenML pack
  const now = Math.floor(Date.now() / 1000);
  const start = now - 1800;
  const pack = [
    ...Array.from({ length: 30 }, (_, i) => ({ n: 'temp', u: 'Cel', v: i + 1, t: start + i * 60 })),
    ...Array.from({ length: 15 }, (_, i) => ({ n: 'hum', u: '%RH', v: 40 + i, t: start + i * 60 + 30 })),
  ];
  const published = await fetch(`${origin}/channels/${channel}/messages/greenhouse`, { method: 'POST', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/senml+json' }, body: JSON.stringify(pack) });
  assert.equal(published.status, 202, await published.text());

  browser = await launchChromium();
  const { page, elsewhere, errors } = await openPage(browser, origin);
  const cspViolations = await watchCsp(page);
  const chartChunks: string[] = [];
  page.on('request', (req) => {
    if (/\/assets\/uplot-chart-/.test(req.url())) chartChunks.push(req.url());
  });
  await page.goto(`${origin}/sign-in`);
  await signIn(page, admin);
  await page.getByRole('heading', { name: 'Organizations' }).waitFor();

  // the stored records, newest first, 20 to a page
  await page.goto(`${origin}/organizations/${org}/channels/${channel}`);
  await page.getByTestId('live-state').waitFor();
  await page.getByRole('link', { name: 'Stored messages' }).click();
  const info = page.getByTestId('history-page-info');
  await info.filter({ hasText: '1–20, more follow' }).waitFor();
  const records = page.getByRole('table', { name: 'Stored records' });
  const firstRow = () => records.getByRole('row').nth(1);
  await firstRow().getByRole('cell', { name: '30 Cel', exact: true }).waitFor();
  assert.match(await firstRow().innerText(), /temp/);
  assert.match(await firstRow().innerText(), /greenhouse/);

  // filtered by name, by the platform; paged
  await page.getByLabel('Name', { exact: true }).fill('temp');
  await page.getByRole('button', { name: 'Filter' }).click();
  await info.filter({ hasText: '1–20, more follow' }).waitFor();
  assert.equal(await records.getByRole('row').filter({ hasText: 'hum' }).count(), 0);
  await page.getByRole('button', { name: 'Next' }).click();
  await info.filter({ hasText: '21–30, the last' }).waitFor();
  assert.equal(await records.getByRole('row').count(), 1 + 10);
  await page.getByRole('button', { name: 'Previous' }).click();
  await info.filter({ hasText: '1–20, more follow' }).waitFor();
  // a value comparison narrows it further
  await page.getByLabel('Value is').selectOption('gt');
  await page.getByLabel('Value', { exact: true }).fill('25');
  await page.getByRole('button', { name: 'Filter' }).click();
  await info.filter({ hasText: '1–5, the last' }).waitFor();
  await page.getByLabel('Value', { exact: true }).fill('');
  // and a time range: from the 21st temperature on (inclusive), in the browser's local time
  await page.getByLabel('From').fill(localDateTime(start + 20 * 60));
  await page.getByRole('button', { name: 'Filter' }).click();
  await info.filter({ hasText: '1–10, the last' }).waitFor();
  await page.getByLabel('From').fill('');
  await page.getByRole('button', { name: 'Filter' }).click();
  await info.filter({ hasText: '1–20, more follow' }).waitFor();

  // oldest first, by keyboard
  await page.getByLabel('Newest first').focus();
  await page.keyboard.press('Space');
  await firstRow().getByRole('cell', { name: '1 Cel', exact: true }).waitFor();
  await page.getByLabel('Per page').selectOption('50');
  await info.filter({ hasText: '1–30, the last' }).waitFor();
  // the view is in the address: a reload shows the same
  assert.deepEqual(Object.fromEntries(new URL(page.url()).searchParams), { view: 'history', name: 'temp', limit: '50', dir: 'asc' });
  await page.reload();
  await info.filter({ hasText: '1–30, the last' }).waitFor();
  assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'temp');
  assert.equal(await page.getByLabel('Newest first').isChecked(), false);
  await firstRow().getByRole('cell', { name: '1 Cel', exact: true }).waitFor();

  // the CSV of the same filter, fetched with the token (never in a URL) and saved from a Blob
  const download = page.waitForEvent('download');
  const csvRequest = page.waitForRequest((req) => req.url().includes('format=csv'));
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const sent = await csvRequest;
  assert.match(String((await sent.allHeaders()).authorization), /^Bearer /, 'the CSV request carries the access token');
  assert.doesNotMatch(sent.url(), /authorization|token|Bearer/i, 'and the URL does not');
  const file = await download;
  assert.equal(file.suggestedFilename(), 'telemetry.csv');
  const lines = (await readFile(await file.path())).toString('utf8').trim().split('\r\n');
  assert.equal(lines[0], 'channel,subtopic,publisher,protocol,name,unit,time,update_time,value,string_value,bool_value,data_value,sum');
  assert.equal(lines.length, 1 + 30, 'a header and the 30 temperatures');
  assert.ok(lines.slice(1).every((l) => l.includes(',temp,Cel,')), lines.join('\n'));
  assert.equal(lines[1]!.split(',')[8], '1', 'oldest first, as the table');
  await checkPage(page, 'channel-history');

  // a phone-sized screen: the filters stack, the table scrolls on its own
  await page.setViewportSize({ width: 390, height: 844 });
  await info.filter({ hasText: '1–30, the last' }).waitFor();
  assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 390, 'no sideways scrolling');
  await page.setViewportSize({ width: 1280, height: 800 });

  // the chart: uPlot is loaded only now
  assert.deepEqual(chartChunks, [], 'uPlot is not in the first load');
  await page.getByRole('link', { name: 'Chart' }).click();
  await page.getByLabel('Name').selectOption('temp');
  await page.getByLabel('Aggregation').selectOption('max');
  await page.getByLabel('Range').selectOption('hour');
  assert.equal(await page.getByLabel('Interval').inputValue(), '1m');
  await page.getByRole('button', { name: 'Draw chart' }).click();
  await page.getByTestId('chart').locator('canvas').waitFor();
  const caption = (await page.getByTestId('chart-caption').innerText()).replace(/\s+/g, ' ');
  assert.match(caption, /^Maximum of temp per 1m over the last hour: 30 intervals; min 1, max 30, last 30 at /, caption);
  assert.ok(chartChunks.length > 0, 'the chart chunk is loaded with the chart');
  await page.getByRole('button', { name: 'Show as table' }).click();
  const values = page.getByRole('table', { name: /^Chart values/ });
  assert.equal(await values.getByRole('row').count(), 1 + 30);
  await checkPage(page, 'channel-chart');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByTestId('chart').locator('canvas').waitFor();
  assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 390, 'the chart fits a phone');
  await page.setViewportSize({ width: 1280, height: 800 });
  assert.deepEqual(await cspViolations(), [], 'uPlot and its stylesheet load under the Content-Security-Policy');
  assert.deepEqual(errors, [], 'and nothing else went wrong so far');
  // (the watch sees a violation: an inline <style> is one)
  await page.evaluate(`document.head.append(Object.assign(document.createElement('style'), { textContent: 'p { color: red }' }))`);
  await page.waitForFunction('window.cspViolations.length > 0');
  assert.match((await cspViolations()).join(), /^style-src/);
  errors.splice(0); // the console's report of that refusal

  // a JSON channel shows its stored documents
  const json = await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'events', content_type: 'application/json' } });
  assert.equal(json.status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device.id], channel_ids: [json.body.id], types: ['publish'] } })).status, 204);
  const doc = await fetch(`${origin}/channels/${json.body.id}/messages`, { method: 'POST', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ door: 'open', level: 3 }) });
  assert.equal(doc.status, 202);
  await page.goto(`${origin}/organizations/${org}/channels/${json.body.id}?view=history`);
  await page.getByRole('table', { name: 'Stored documents' }).getByRole('row').filter({ hasText: '{"door":"open","level":3}' }).waitFor();

  // and a channel of bytes its payloads, in hex when they are not text
  const bytes = await call<{ id: string }>(origin, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'frames', content_type: 'application/octet-stream' } });
  assert.equal(bytes.status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/connections`, { token, body: { device_ids: [device.id], channel_ids: [bytes.body.id], types: ['publish'] } })).status, 204);
  const frame = await fetch(`${origin}/channels/${bytes.body.id}/messages`, { method: 'POST', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array([0x01, 0xff, 0x80]) });
  assert.equal(frame.status, 202);
  await page.goto(`${origin}/organizations/${org}/channels/${bytes.body.id}?view=history`);
  await page.getByRole('table', { name: 'Stored payloads' }).getByRole('row').filter({ hasText: '000000  01 ff 80' }).filter({ hasText: '3 bytes' }).waitFor();

  // dead letters, set aside by the writer's repository as the writer does (test/poison.test.ts
  // makes real ones; here the subject is the page)
  const db = await Database.open({ url: sqliteUrlFor(data) });
  const letters = new DeadLetterRepository(db);
  const received = Date.now() - 60_000;
  const text = { id: uuidv7(received), org, channel, subtopic: 'lab', publisher: device.id, protocol: 'mqtt' as const, contentType: 'application/json', payload: Buffer.from('{"a":[[[[[[[[[[[[[[]]]]]]]]]]]]]]}'), receivedAt: received };
  const binary = { ...text, id: uuidv7(received + 1000), subtopic: '', protocol: 'coap' as const, contentType: 'application/senml+cbor', payload: Buffer.from([0x9f, 0xff, 0x00, 0xde, 0xad, 0xbe, 0xef]), receivedAt: received + 1000 };
  assert.ok(await letters.add(text, 'the JSON is nested deeper than the writer reads', Date.now()));
  assert.ok(await letters.add(binary, 'not a SenML CBOR pack: unexpected break', Date.now()));
  await db.close();

  await page.getByRole('link', { name: 'Dead letters' }).click();
  const table = page.getByRole('table', { name: 'Dead letters' });
  await table.getByRole('row').filter({ hasText: 'nested deeper' }).waitFor();
  assert.equal(await table.getByRole('row').count(), 1 + 2);
  assert.match(await table.getByRole('row').nth(1).innerText(), /telemetry[\s\S]*lab[\s\S]*nested deeper[\s\S]*34 bytes/);
  await page.getByTestId('dead-letters-page-info').filter({ hasText: '1–2 of 2' }).waitFor();
  await table.getByRole('row').nth(1).getByRole('button', { name: /^Payload/ }).click();
  await page.getByTestId('dead-letter-bytes').filter({ hasText: '{"a":[[[[' }).waitFor();
  await page.getByLabel('Show in hex').check();
  await page.getByTestId('dead-letter-bytes').filter({ hasText: '000000  7b 22 61 22' }).waitFor();
  await table.getByRole('row').nth(2).getByRole('button', { name: /^Payload/ }).click();
  await page.getByText('Not UTF-8 text: shown in hex.').waitFor();
  await page.getByTestId('dead-letter-bytes').filter({ hasText: '000000  9f ff 00 de ad be ef' }).waitFor();
  await checkPage(page, 'dead-letters');
  await page.setViewportSize({ width: 390, height: 844 });
  await table.waitFor();
  assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 390, 'the dead letters fit a phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  await table.getByRole('row').nth(1).getByRole('button', { name: /^Delete/ }).click();
  await page.getByRole('status').filter({ hasText: 'The dead letter was deleted.' }).waitFor();
  await page.getByTestId('dead-letters-page-info').filter({ hasText: '1–1 of 1' }).waitFor();
  const left = await call<{ total: number; dead_letters: { id: string }[] }>(origin, 'GET', `/orgs/${org}/dead-letters`, { token });
  assert.deepEqual(left.body.dead_letters.map((d) => d.id), [binary.id]);
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Delete all 1' }).click();
  await page.getByText('No dead letters: every message received was stored.').waitFor();
  assert.equal((await call<{ total: number }>(origin, 'GET', `/orgs/${org}/dead-letters`, { token })).body.total, 0);

  // a viewer: no dead letters tab, no delete control, the stored messages still readable
  assert.equal((await call(origin, 'POST', '/auth/signup', { body: viewer })).status, 201);
  assert.equal((await call(origin, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
  const db2 = await Database.open({ url: sqliteUrlFor(data) });
  await new DeadLetterRepository(db2).add({ ...text, id: uuidv7() }, 'kept for the viewer test', Date.now());
  await db2.close();
  const seen = await openPage(browser, origin);
  await seen.page.goto(`${origin}/sign-in`);
  await signIn(seen.page, viewer);
  await seen.page.getByRole('heading', { name: 'Organizations' }).waitFor();
  await seen.page.goto(`${origin}/organizations/${org}/channels/${channel}?view=history`);
  await seen.page.getByTestId('history-page-info').filter({ hasText: '1–20, more follow' }).waitFor();
  assert.equal(await seen.page.getByRole('link', { name: 'Dead letters' }).count(), 0);
  await seen.page.goto(`${origin}/organizations/${org}/dead-letters`);
  await seen.page.getByText("Only the organization's owners and admins see the messages that could not be stored.").waitFor();
  assert.equal(await seen.page.getByRole('button', { name: /Delete/ }).count(), 0);
  const { token: viewerToken } = await login(origin, viewer.email, viewer.password);
  assert.equal((await call(origin, 'GET', `/orgs/${org}/dead-letters`, { token: viewerToken })).status, 403, 'the platform refuses a viewer anyway');

  assert.deepEqual(elsewhere, [], 'everything comes from the platform');
  assert.deepEqual(seen.elsewhere, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(seen.errors, []);
});
