// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// A client generator accepts /openapi.json: Redocly's TypeScript client generator makes a client of
// it, the client compiles under strict TypeScript, and its calls (named by operationId) work
// against a listening platform: defaults left out, a subtopic with a slash, problems as errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generatedDocument, redocly } from '../scripts/lint-openapi.js';
import { startTestPlatform, type TestPlatform } from './helpers/platform.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'fleetwire-openapi-client-'));
const clientFile = join(dir, 'client.ts');
let t: TestPlatform;

before(async () => {
  writeFileSync(join(dir, 'openapi.json'), await generatedDocument());
  const { code, output } = redocly(['generate-client', join(dir, 'openapi.json'), '--output', clientFile]);
  assert.equal(code, 0, output);
  t = await startTestPlatform();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the generated client compiles under strict TypeScript', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const typeRoots = join(dirname(require.resolve('@types/node/package.json')), '..');
  const res = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2023', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--types', 'node', '--typeRoots', typeRoots, clientFile], { encoding: 'utf8', cwd: dir });
  assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
});

test('the generated client manages a fleet and publishes and reads a message', async () => {
  type Api = Record<string, (...args: unknown[]) => Promise<Record<string, unknown>>> & { configure(c: { serverUrl: string }): void; auth: { bearer(token: string): void } };
  const generated = (await import(pathToFileURL(clientFile).href)) as { client: Api; ApiError: new (...args: unknown[]) => Error & { status: number; body: { code?: string } } };
  const api = generated.client;
  const { port } = t.app.server.address() as { port: number };
  api.configure({ serverUrl: `http://127.0.0.1:${port}` });

  assert.equal((await api.getHealth!()).status, 'ok');
  const admin = await t.user('client-admin@example.org', 'admin');
  const login = await api.logIn!({ body: { email: admin.email, password: admin.password } });
  api.auth.bearer(String(login.access_token));

  const org = await api.createOrganization!({ body: { name: 'generated' } });
  const device = await api.createDevice!({ path: { org: org.id }, body: { name: 'sensor' } });
  const channel = await api.createChannel!({ path: { org: org.id }, body: { name: 'telemetry' } });
  await api.connectDevices!({ path: { org: org.id }, body: { device_ids: [device.id], channel_ids: [channel.id], types: ['publish', 'subscribe'] } });
  // the defaults (offset, limit, sort, dir) left out
  const listed = await api.listDevices!({ path: { org: org.id } });
  assert.equal(listed.limit, 20);
  assert.deepEqual((listed.devices as { id: string }[]).map((d) => d.id), [device.id]);

  await api.publishMessageOnSubtopic!({ path: { id: channel.id, subtopic: 'lab/bench' }, body: { temp: 21.5 } });
  const read = await api.readMessages!({ path: { id: channel.id }, query: { type: 'json' } });
  assert.deepEqual((read.messages as { subtopic: string; document: unknown }[]).map((m) => [m.subtopic, m.document]), [['lab/bench', { temp: 21.5 }]]);

  // a refusal is the client's error, carrying the problem
  await assert.rejects(api.getDevice!({ path: { org: org.id, id: '00000000-0000-7000-8000-000000000000' } }), (e: unknown) => e instanceof generated.ApiError && e.status === 404 && e.body.code === 'device.not_found');
});
