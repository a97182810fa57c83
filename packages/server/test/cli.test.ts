// The CLI as an operator runs it: separate processes, environment variables, a data folder, signals.
// They run on the database of the pass: the data folder's fleetwire.db, or in the PostgreSQL pass a
// fresh database per data folder (test/helpers/cli.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, cleanupCli, cliEnv, dataFolder, login, packageVersion, root, runCli, startCli, type LogLine } from './helpers/cli.js';
import { testDatabaseKind } from './helpers/database.js';
import { eventually } from './helpers/eventually.js';
const adminEmail = 'admin@example.com';
const adminPassword = 'change-me-please';

// Each test has its own data folder, so they run side by side (process start-up dominates).
describe('fleetwire CLI', { concurrency: true }, () => {
  after(cleanupCli);

  test('start serves the README flow and stops cleanly on SIGTERM', async () => {
    const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: adminEmail, FLEETWIRE_ADMIN_PASSWORD: adminPassword }));
    const { api } = server;
    assert.ok(server.logs.some((l) => l.msg === 'created the first platform admin from FLEETWIRE_ADMIN_EMAIL'));

    const admin = await login(api, adminEmail, adminPassword);
    assert.equal(admin.status, 200);
    const token = admin.token;
    const org = await call<{ id: string }>(api, 'POST', '/orgs', { token, body: { name: 'Acme' } });
    assert.equal(org.status, 201);
    const ORG = org.body.id;
    const user = await call(api, 'POST', '/users', { token, body: { email: 'ops@example.com', password: 'another-long-password', name: 'Ops' } });
    assert.equal(user.status, 201);
    const member = await call(api, 'POST', `/orgs/${ORG}/members`, { token, body: { email: 'ops@example.com', role: 'operator' } });
    assert.equal(member.status, 201);
    assert.equal(member.body.role, 'operator');
    const device = await call<{ id: string; secret: string }>(api, 'POST', `/orgs/${ORG}/devices`, { token, body: { name: 'thermometer-1', tags: ['lab'], metadata: { floor: 2 } } });
    assert.equal(device.status, 201);
    assert.match(device.body.secret, /^[A-Za-z0-9_-]{43}$/);
    const channel = await call<{ id: string }>(api, 'POST', `/orgs/${ORG}/channels`, { token, body: { name: 'lab-temperatures' } });
    assert.equal(channel.status, 201);
    const connect = await call(api, 'POST', `/orgs/${ORG}/connections`, { token, body: { device_ids: [device.body.id], channel_ids: [channel.body.id], types: ['publish', 'subscribe'] } });
    assert.equal(connect.status, 204);
    const onChannel = await call<{ devices: unknown[] }>(api, 'GET', `/orgs/${ORG}/channels/${channel.body.id}/devices`, { token });
    assert.equal(onChannel.status, 200);
    assert.deepEqual(onChannel.body.devices, [{ device_id: device.body.id, name: 'thermometer-1', status: 'enabled', types: ['publish', 'subscribe'] }]);
    const filtered = await call<{ devices: { id: string }[] }>(api, 'GET', `/orgs/${ORG}/devices?tag=lab&metadata=${encodeURIComponent('{"floor":2}')}`, { token });
    assert.deepEqual(filtered.body.devices.map((d) => d.id), [device.body.id]);
    // the operator logs in and sees the organization's devices
    const ops = await login(api, 'ops@example.com', 'another-long-password');
    assert.equal((await call(api, 'GET', `/orgs/${ORG}/devices`, { token: ops.token })).body.total, 1);

    // probes and scrapes, every few seconds in a cluster, write nothing at info; other requests do
    for (const url of ['/health', '/livez', '/ready', '/readyz', '/metrics']) assert.equal((await fetch(`${api}${url}`)).status, 200, url);
    const urlOf = (l: LogLine) => ((l.req as { url?: string } | undefined)?.url);
    await eventually(() => assert.ok(server.logs.some((l) => urlOf(l) === `/orgs/${ORG}/devices`), 'an API request is logged at info'));
    const probeLines = server.logs.filter((l) => ['/health', '/livez', '/ready', '/readyz', '/metrics'].includes(urlOf(l) ?? ''));
    assert.deepEqual(probeLines, [], 'no probe is logged at info');

    assert.equal(await server.stop(), 0);
    const messages = server.logs.map((l) => l.msg);
    assert.ok(messages.includes('signal received'));
    assert.equal(messages.at(-1), 'stopped');
  });

  test('a promise rejection nobody handled is logged with its stack, and the server goes on serving', async () => {
    const server = await startCli(cliEnv(dataFolder()), { nodeArgs: ['--import', join(root, 'test', 'fixtures', 'unhandled-rejection.mjs')] });
    await eventually(() => assert.ok(server.logs.some((l) => l.msg.startsWith('unhandled rejection'))));
    const line = server.logs.find((l) => l.msg.startsWith('unhandled rejection'))!;
    assert.equal(line.level, 50);
    assert.match(String((line.err as { stack?: string }).stack), /a rejection nobody handles/);
    assert.equal((await fetch(`${server.api}/health`)).status, 200);
    assert.equal(await server.stop(), 0);
  });

  test('version prints the package version', async () => {
    const res = await runCli(['version'], cliEnv(dataFolder()));
    assert.equal(res.code, 0);
    assert.equal(res.stdout, `${packageVersion}\n`);
  });

  test('migrate on a fresh data folder creates the database and exits 0', async () => {
    const dir = dataFolder();
    const res = await runCli(['migrate'], cliEnv(dir));
    assert.equal(res.code, 0, res.stderr);
    assert.equal(existsSync(join(dir, 'fleetwire.db')), testDatabaseKind() === 'sqlite', 'the SQLite file is made only when there is no other database');
    const logs = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogLine);
    assert.equal(logs[0]?.msg, 'applied migration');
    assert.equal(logs.at(-1)?.msg, 'database is up to date');
    assert.equal(logs.at(-1)?.applied, logs.length - 1);
  });

  test('a bad setting exits 1 naming the variable', async () => {
    const res = await runCli(['start'], cliEnv(dataFolder(), { FLEETWIRE_HTTP_PORT: 'abc' }));
    assert.equal(res.code, 1);
    assert.match(res.stderr, /FLEETWIRE_HTTP_PORT/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'a configuration error is a message, not a stack trace');
  });

  test('an admin made with admin create logs in; a restart keeps the data and the server key', async () => {
    const dir = dataFolder();
    const created = await runCli(['admin', 'create', '--email', 'Root@Example.com', '--name', 'Root'], cliEnv(dir), 'root-password-123\n');
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout) as { email: string; role: string; name: string };
    assert.deepEqual([user.email, user.role, user.name], ['root@example.com', 'admin', 'Root']);

    const first = await startCli(cliEnv(dir));
    const root = await login(first.api, 'root@example.com', 'root-password-123');
    assert.equal(root.status, 200);
    const token = root.token;
    assert.equal((await call(first.api, 'GET', '/users', { token })).status, 200, 'admins may list users');
    const org = (await call<{ id: string }>(first.api, 'POST', '/orgs', { token, body: { name: 'Persistent' } })).body;
    const device = (await call<{ id: string }>(first.api, 'POST', `/orgs/${org.id}/devices`, { token, body: { name: 'kept' } })).body;
    assert.equal(await first.stop(), 0);
    const key = readFileSync(join(dir, 'secret.key'), 'utf8');

    const second = await startCli(cliEnv(dir));
    try {
      assert.ok(!second.logs.some((l) => l.msg === 'applied migration'), 'nothing left to migrate');
      assert.ok(!second.logs.some((l) => l.msg.startsWith('generated a new server key')), 'the server key is not replaced');
      // an access token signed before the restart still verifies: the server key was kept
      const orgs = await call<{ orgs: { id: string }[] }>(second.api, 'GET', '/orgs', { token });
      assert.equal(orgs.status, 200);
      assert.deepEqual(orgs.body.orgs.map((o) => o.id), [org.id]);
      const kept = await call(second.api, 'GET', `/orgs/${org.id}/devices/${device.id}`, { token });
      assert.equal(kept.body.name, 'kept');
      assert.equal(readFileSync(join(dir, 'secret.key'), 'utf8'), key);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
