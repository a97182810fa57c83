// test-database: once (the subject is the command line, not the database)
// `fleetwire events list` and `fleetwire events tail` against a real `fleetwire start`, as a user runs them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, cleanupCli, cliEnv, dataFolder, exitOf, login, outcomeOf, spawnCli, startCli, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';

const admin = { email: 'admin@example.com', password: 'change-me-please' };

describe('fleetwire events', () => {
  let server: Server;
  let token: string;
  let org: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
    ({ token } = await login(server.api, admin.email, admin.password));
    org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'cli events' } })).body.id;
    const home = dataFolder();
    env = { ...cliEnv(home), XDG_CONFIG_HOME: `${home}/config` };
    for (const k of Object.keys(env)) if (k.startsWith('FLEETWIRE_')) delete env[k];
    Object.assign(env, { FLEETWIRE_URL: server.api, FLEETWIRE_TOKEN: token });
  });
  after(cleanupCli);

  test('events list shows the stored events with filters, as a table or JSON', async () => {
    const device = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/devices`, { token, body: { name: 'listed' } })).body.id;
    await call(server.api, 'POST', `/orgs/${org}/devices/${device}/disable`, { token });
    await call(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'listed' } });

    const table = await outcomeOf(spawnCli(['events', 'list', '--org', org, '--type', 'device.*'], env));
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME\s+TYPE\s+ACTOR\s+SUBJECT\s+DETAIL/);
    assert.match(lines[1]!, new RegExp(`device\\.disabled\\s+user:\\S+\\s+device:${device}\\s+POST /orgs/:org/devices/:id/disable 200`));
    assert.match(lines[2]!, /device\.created/);
    assert.equal(lines.length, 3);

    const json = await outcomeOf(spawnCli(['events', 'list', '--org', org, '--device', device, '--oldest-first', '--json'], env));
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as { events: { type: string }[] }).events.map((e) => e.type), ['device.created', 'device.disabled']);

    const recent = await outcomeOf(spawnCli(['events', 'list', '--org', org, '--from', '1h', '--type', 'channel.created', '--json'], env));
    assert.equal(JSON.parse(recent.stdout).total, 1);

    const bad = await outcomeOf(spawnCli(['events', 'list', '--org', org, '--type', 'no.such'], env));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /request\.invalid/);
  });

  test('events tail prints each event as it happens until Ctrl-C', async () => {
    const child = spawnCli(['events', 'tail', '--org', org, '--type', 'group.*', '--json'], env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await eventually(() => assert.match(stderr, /following the events of/), 30_000);
      await call(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'not shown' } });
      const group = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/groups`, { token, body: { name: 'tailed' } })).body.id;
      await eventually(() => assert.ok(stdout.includes('\n')), 10_000);
      const event = JSON.parse(stdout.trimEnd().split('\n')[0]!) as { type: string; subject: { id: string } };
      assert.deepEqual([event.type, event.subject.id], ['group.created', group]);
      child.kill('SIGINT');
      assert.equal(await exitOf(child), 0, stderr);
      assert.equal(stdout.trimEnd().split('\n').length, 1);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
