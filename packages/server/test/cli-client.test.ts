// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The client commands as a user runs them: `fleetwire login`, `devices`, `publish`, … in their own
// processes, against a real `fleetwire start`, each user with their own config folder. SQLite only,
// as the marker says: what is tested here is the command line, not the database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { call, cleanupCli, cliEnv, dataFolder, exitOf, login, outcomeOf, root, spawnCli, startCli, type Server } from './helpers/cli.js';
import { eventually } from './helpers/eventually.js';
import { certificateAuthority, deviceRequest } from './helpers/tls.js';

const require = createRequire(import.meta.url);
const admin = { email: 'admin@example.com', password: 'change-me-please' };
const viewer = { email: 'viewer@example.com', password: 'a-viewer-password' };
const unknownId = '00000000-0000-7000-8000-000000000000';

type Result = { code: number | null; stdout: string; stderr: string };

/**
 * The commands run from the sources (tsx), or with FLEETWIRE_TEST_CLI_BUILT=1 from `dist/` as the
 * installed package runs them (`npm run build` first). The platform itself always runs from the sources.
 */
const built = process.env.FLEETWIRE_TEST_CLI_BUILT === '1';

/** `fleetwire <args>` to completion, as test/helpers/cli.ts runCli, from the sources or the build. */
async function fleetwire(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<Result> {
  // no database of the pass: the client commands open none
  return outcomeOf(spawnCli(args, env, { built }), stdin);
}

let server: Server;
/** The organization the admin made in `before`, with the viewer in it. */
let org: string;

/** A user of the CLI: their own config folder, and the environment a shell would give them. */
function user(extra: Record<string, string> = {}) {
  const home = dataFolder();
  const env: NodeJS.ProcessEnv = { ...cliEnv(home), XDG_CONFIG_HOME: join(home, 'config'), ...extra };
  // the client commands read no server setting: only FLEETWIRE_URL and FLEETWIRE_TOKEN
  for (const k of Object.keys(env)) if (k.startsWith('FLEETWIRE_') && !(k in extra)) delete env[k];
  return {
    home,
    credentials: join(home, 'config', 'fleetwire', 'credentials.json'),
    run: (args: string[], stdin = '', more: Record<string, string> = {}) => fleetwire(args, { ...env, ...more }, stdin),
    /** Runs the command and parses its --json output; fails the test on any exit code but 0. */
    json: async <T = Record<string, unknown>>(args: string[], stdin = ''): Promise<T> => {
      const res = await fleetwire([...args, '--json'], env, stdin);
      assert.equal(res.code, 0, `fleetwire ${args.join(' ')}: ${res.stderr}`);
      return JSON.parse(res.stdout) as T;
    },
    env,
  };
}

type User = ReturnType<typeof user>;

async function signedIn(who = admin): Promise<User> {
  const u = user();
  const res = await u.run(['login', '--url', server.api, '--email', who.email, '--password-stdin'], who.password + '\n');
  assert.equal(res.code, 0, res.stderr);
  return u;
}

/** Exit 1, the refusal's title and code on standard error, nothing on standard output. */
function assertRefused(res: Result, code: string): void {
  assert.equal(res.code, 1, `expected a refusal: ${res.stdout}${res.stderr}`);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, new RegExp(`^fleetwire: .+ \\(${code.replace('.', '\\.')}\\)`));
  assert.equal(res.stderr.trimEnd().split('\n').length, 1, 'one line');
}

/** A TCP port nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function assertUsage(res: Result, pattern: RegExp): void {
  assert.equal(res.code, 2, `expected a usage error: ${res.stdout}${res.stderr}`);
  assert.match(res.stderr, pattern);
}

before(async () => {
  server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password }));
  const { token } = await login(server.api, admin.email, admin.password);
  org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'shared' } })).body.id;
  assert.equal((await call(server.api, 'POST', '/users', { token, body: { ...viewer, name: 'Viewer' } })).status, 201);
  assert.equal((await call(server.api, 'POST', `/orgs/${org}/members`, { token, body: { email: viewer.email, role: 'viewer' } })).status, 201);
});
after(cleanupCli);

describe('fleetwire client commands', { concurrency: 3 }, () => {
  test('login stores the tokens with mode 0600, whoami uses them, logout revokes them', async () => {
    const u = await signedIn();
    const file = statSync(u.credentials);
    assert.equal(file.mode & 0o777, 0o600);
    assert.equal(statSync(dirname(u.credentials)).mode & 0o777, 0o700);
    const stored = JSON.parse(readFileSync(u.credentials, 'utf8')) as { url: string; refreshToken: string };
    assert.equal(stored.url, server.api);

    const me = await u.json<{ email: string; url: string }>(['whoami']);
    assert.equal(me.email, admin.email);
    assert.equal(me.url, server.api);

    const out = await u.run(['logout']);
    assert.equal(out.code, 0, out.stderr);
    // the session is over on the platform, not only forgotten here
    assert.equal((await call(server.api, 'POST', '/auth/refresh', { body: { refresh_token: stored.refreshToken } })).status, 401);
    const after = await u.run(['whoami']);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /^fleetwire: not logged in/);
  });

  test('on a terminal, login asks for the password without echoing it, and colours what it prints', { skip: spawnSync('script', ['--version']).status !== 0 && 'needs script(1), from util-linux, for a terminal' }, async () => {
    const u = user();
    const command = [process.execPath, ...(built ? ['dist/cli.js'] : ['--import', 'tsx', 'src/cli.ts']), 'login', '--url', server.api, '--email', admin.email].map((w) => `'${w}'`).join(' ');
    // script(1) runs the command on a pseudo-terminal: its standard input is a terminal, as a person's is
    // a person's terminal says what it is (TERM) and sets none of the variables that turn colour off;
    // CI runs with none of that, so the test sets it rather than inherit it
    const env: NodeJS.ProcessEnv = { ...u.env, TERM: 'xterm-256color' };
    for (const k of ['CI', 'NO_COLOR', 'FORCE_COLOR', 'NODE_DISABLE_COLORS']) delete env[k];
    const terminal = spawn('script', ['-qec', command, '/dev/null'], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    terminal.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await eventually(() => assert.match(seen, /Password: $/), 30_000);
      terminal.stdin!.write(admin.password + '\r');
      assert.equal(await exitOf(terminal), 0, seen);
    } finally {
      terminal.kill('SIGKILL');
    }
    assert.ok(!seen.includes(admin.password), `the password is not echoed: ${seen}`);
    assert.ok(seen.includes(`\u001b[32msigned in\u001b[39m to ${server.api}`), `coloured on a terminal: ${JSON.stringify(seen)}`);
    assert.equal(statSync(u.credentials).mode & 0o777, 0o600);
  });

  test('a wrong password is refused with exit 1 and no token is stored', async () => {
    const u = user();
    const res = await u.run(['login', '--url', server.api, '--email', admin.email, '--password-stdin'], 'not-the-password\n');
    assertRefused(res, 'auth.invalid_credentials');
    assert.throws(() => statSync(u.credentials), /ENOENT/);
  });

  test('an expired access token is refreshed before use and the new pair stored', async () => {
    const u = await signedIn();
    const stored = JSON.parse(readFileSync(u.credentials, 'utf8')) as { accessToken: string; accessExpiresAt: number };
    writeFileSync(u.credentials, JSON.stringify({ ...stored, accessExpiresAt: Date.now() - 1000 }));
    assert.equal((await u.json<{ email: string }>(['whoami'])).email, admin.email);
    const renewed = JSON.parse(readFileSync(u.credentials, 'utf8')) as { accessToken: string; accessExpiresAt: number };
    assert.notEqual(renewed.accessToken, stored.accessToken);
    assert.ok(renewed.accessExpiresAt > Date.now());
    assert.equal(statSync(u.credentials).mode & 0o777, 0o600);
  });

  test('commands started together after the access token expired refresh the session once, and it stays valid', async () => {
    const u = await signedIn();
    const expire = () => {
      const stored = JSON.parse(readFileSync(u.credentials, 'utf8')) as { accessExpiresAt: number };
      writeFileSync(u.credentials, JSON.stringify({ ...stored, accessExpiresAt: Date.now() - 1000 }));
    };
    expire();
    // the platform ends a session whose refresh token is presented twice: each must see the others' refresh
    const together = await Promise.all([1, 2, 3, 4].map(() => u.run(['whoami', '--json'])));
    for (const res of together) assert.equal(res.code, 0, res.stderr);
    expire();
    const again = await u.run(['whoami', '--json']);
    assert.equal(again.code, 0, `the session is still valid: ${again.stderr}`);
    assert.throws(() => statSync(`${u.credentials}.lock`), /ENOENT/, 'the lock is let go');
  });

  test('organizations, members, devices, channels, groups, connections and tokens are managed from the command line', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string; name: string; role: string }>(['orgs', 'create', 'Acme']);
    assert.equal(created.role, 'owner');
    // chosen once by name, remembered for the commands after
    const use = await u.run(['orgs', 'use', 'Acme']);
    assert.equal(use.code, 0, use.stderr);
    assert.equal((await u.json<{ org: string }>(['whoami'])).org, created.id);
    const orgs = await u.json<{ orgs: { id: string }[] }>(['orgs', 'list']);
    assert.ok(orgs.orgs.some((o) => o.id === created.id));

    const member = await u.json<{ email: string; role: string }>(['members', 'add', viewer.email, '--role', 'viewer']);
    assert.deepEqual([member.email, member.role], [viewer.email, 'viewer']);
    const members = await u.json<{ members: { email: string; role: string }[] }>(['members', 'list']);
    assert.deepEqual(members.members.map((m) => m.email).sort(), [admin.email, viewer.email]);

    const device = await u.json<{ id: string; name: string; tags: string[]; metadata: unknown; secret: string }>(['devices', 'create', 'thermometer', '--tag', 'lab,floor-2', '--metadata', '{"floor":2}']);
    assert.deepEqual([device.name, device.tags, device.metadata], ['thermometer', ['lab', 'floor-2'], { floor: 2 }]);
    assert.match(device.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await u.json<{ status: string }>(['devices', 'disable', device.id])).status, 'disabled');
    assert.equal((await u.json<{ status: string }>(['devices', 'enable', device.id])).status, 'enabled');
    const rotated = await u.json<{ secret: string }>(['devices', 'rotate-secret', device.id]);
    assert.notEqual(rotated.secret, device.secret);

    // a CSV file, all or nothing; the JSON of the metadata column is quoted as CSV quotes
    const csv = join(u.home, 'devices.csv');
    writeFileSync(csv, 'name,tags,metadata,status\nvalve-1,pump;north,"{""zone"":1}",enabled\nvalve-2,,,disabled\n');
    const imported = await u.json<{ devices: { id: string; name: string; tags: string[]; metadata: unknown; status: string; secret: string }[] }>(['devices', 'import', csv]);
    assert.deepEqual(imported.devices.map((d) => [d.name, d.tags, d.metadata, d.status]), [['valve-1', ['pump', 'north'], { zone: 1 }, 'enabled'], ['valve-2', [], {}, 'disabled']]);
    assert.ok(imported.devices.every((d) => d.secret.length === 43));

    // the table for people: a header and aligned columns, no colour codes in a pipe
    const table = await u.run(['devices', 'list', '--tag', 'lab']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+STATUS\s+TAGS\s+CREATED$/);
    assert.equal(lines.length, 2);
    assert.ok(lines[1]!.startsWith(device.id) && lines[1]!.includes('thermometer'));
    assert.equal(lines[1]!.indexOf('thermometer'), lines[0]!.indexOf('NAME'), 'columns line up');
    assert.ok(!table.stdout.includes('\u001b['), 'no escape codes');

    const channel = await u.json<{ id: string; content_type: string }>(['channels', 'create', 'telemetry', '--content-type', 'application/json']);
    assert.equal(channel.content_type, 'application/json');
    assert.deepEqual((await u.json<{ channels: { id: string }[] }>(['channels', 'list'])).channels.map((c) => c.id), [channel.id]);

    const group = await u.json<{ id: string }>(['groups', 'create', 'pumps']);
    await u.json(['groups', 'add', group.id, imported.devices[0]!.id]);
    assert.deepEqual((await u.json<{ devices: { name: string }[] }>(['groups', 'devices', group.id])).devices.map((d) => d.name), ['valve-1']);

    await u.json(['connect', '--device', device.id, '--channel', channel.id, '--type', 'publish']);
    const { token } = await login(server.api, admin.email, admin.password);
    const onChannel = await call<{ devices: { device_id: string; types: string[] }[] }>(server.api, 'GET', `/orgs/${created.id}/channels/${channel.id}/devices`, { token });
    assert.deepEqual(onChannel.body.devices.map((d) => [d.device_id, d.types]), [[device.id, ['publish']]]);
    await u.json(['disconnect', '--device', device.id, '--channel', channel.id, '--type', 'publish']);
    assert.equal((await call<{ total: number }>(server.api, 'GET', `/orgs/${created.id}/channels/${channel.id}/devices`, { token })).body.total, 0);

    const pat = await u.json<{ id: string; token: string; actions: string[] }>(['tokens', 'create', 'ci', '--actions', 'devices:read']);
    assert.deepEqual(pat.actions, ['devices:read']);
    assert.ok((await u.json<{ tokens: { id: string }[] }>(['tokens', 'list'])).tokens.some((t) => t.id === pat.id));
    await u.json(['tokens', 'revoke', pat.id]);
    assert.equal((await call(server.api, 'GET', `/orgs/${created.id}/devices`, { token: pat.token })).status, 401);

    await u.json(['devices', 'delete', device.id]);
    assertRefused(await u.run(['devices', 'show', device.id]), 'device.not_found');
  });

  test('twin get, set, history and query: desired from the command line, reported from the device, a stale version refused', async () => {
    const u = await signedIn();
    await u.json(['orgs', 'create', 'Twins']);
    assert.equal((await u.run(['orgs', 'use', 'Twins'])).code, 0);
    const device = await u.json<{ id: string; secret: string }>(['devices', 'create', 'pump']);
    const set = await u.json<{ version: number; delta: Record<string, unknown> }>(['twin', 'set', device.id, '{"mode":"eco"}', '--tags', '{"site":"berlin"}']);
    assert.deepEqual([set.version, set.delta], [1, { mode: 'eco' }]);
    // the device reports over HTTP with its own credentials
    const reported = await fetch(`${server.api}/devices/${device.id}/twin`, { method: 'PATCH', headers: { authorization: `Device ${device.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ reported: { mode: 'eco', fw: '1.4.2' } }) });
    assert.equal(reported.status, 200, await reported.text());
    const twin = await u.json<{ version: number; delta: unknown; tags: unknown }>(['twin', 'get', device.id]);
    assert.deepEqual([twin.version, twin.delta, twin.tags], [2, {}, { site: 'berlin' }]);
    const plain = await u.run(['twin', 'get', device.id]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /delta\s+\{\}/);
    assertRefused(await u.run(['twin', 'set', device.id, '{"mode":"fast"}', '--if-version', '1']), 'twin.version_conflict');
    assertUsage(await u.run(['twin', 'set', device.id, 'not-json']), /not JSON/);
    const history = await u.json<{ changes: { version: number; actor: { kind: string } }[] }>(['twin', 'history', device.id]);
    assert.deepEqual(history.changes.map((c) => [c.version, c.actor.kind]), [[1, 'user'], [2, 'device']]);
    const found = await u.json<{ total: number; twins: { device_id: string }[] }>(['twin', 'query', 'reported.fw = 1.4.2', 'tags.site = berlin']);
    assert.deepEqual(found.twins.map((t) => t.device_id), [device.id]);
    assertRefused(await u.run(['twin', 'query', 'reported.fw ~ 1']), 'twin.invalid_query');
    const named = await u.json<{ name: string; version: number }>(['twin', 'set', device.id, '{"url":"https://x/fw.bin"}', '--name', 'firmware']);
    assert.deepEqual([named.name, named.version], ['firmware', 1]);
  });

  test('list commands page through the server\'s pages with --limit, --offset and --all', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string }>(['orgs', 'create', 'paging']);
    const names = ['d0', 'd1', 'd2', 'd3', 'd4'];
    await u.json(['devices', 'import', '-', '--org', created.id], `name\n${names.join('\n')}\n`);
    const list = (extra: string[]) => u.json<{ total: number; offset: number; devices: { name: string }[] }>(['devices', 'list', '--org', created.id, '--sort', 'name', ...extra]);

    const first = await list(['--limit', '2']);
    assert.deepEqual([first.total, first.devices.map((d) => d.name)], [5, ['d0', 'd1']]);
    const second = await list(['--limit', '2', '--offset', '2']);
    assert.deepEqual([second.offset, second.devices.map((d) => d.name)], [2, ['d2', 'd3']]);
    // --all asks for pages of --limit until the total is reached
    const all = await list(['--limit', '2', '--all']);
    assert.deepEqual([all.total, all.devices.map((d) => d.name)], [5, names]);
    const rest = await list(['--limit', '2', '--offset', '1', '--all']);
    assert.deepEqual(rest.devices.map((d) => d.name), names.slice(1));

    // for people, where the page sits goes to standard error
    const table = await u.run(['devices', 'list', '--org', created.id, '--limit', '2']);
    assert.equal(table.stdout.trimEnd().split('\n').length, 3);
    assert.match(table.stderr, /1-2 of 5; --offset 2 for the next page/);
  });

  test('publish sends SenML, JSON and bytes from an argument, a file or standard input; subscribe tails them until Ctrl-C; messages reads them back', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string }>(['orgs', 'create', 'messaging']);
    const channel = (await u.json<{ id: string }>(['channels', 'create', 'lab', '--org', created.id])).id;

    const tail = spawnCli(['subscribe', channel, '--json'], u.env, { built });
    let tailed = '';
    let tailErr = '';
    tail.stdout!.on('data', (d: Buffer) => (tailed += d.toString()));
    tail.stderr!.on('data', (d: Buffer) => (tailErr += d.toString()));
    await eventually(() => assert.match(tailErr, /subscribed to/), 30_000);

    const published = await u.run(['publish', channel, '[{"bn":"lab:","n":"temp","u":"Cel","v":21.5}]', '--subtopic', 'bench/1']);
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout.trim(), /^[0-9a-f-]{36}$/, 'the message id');
    const file = join(u.home, 'doc.json');
    writeFileSync(file, '{"humidity":40}');
    assert.equal((await u.run(['publish', channel, '--file', file, '--format', 'json'])).code, 0);
    assert.equal((await u.run(['publish', channel, '--format', 'bytes'], '\u0001\u0002raw')).code, 0);

    const frames = await eventually(() => {
      const lines = tailed.trimEnd().split('\n').filter(Boolean);
      assert.equal(lines.length, 3);
      return lines.map((l) => JSON.parse(l) as { subtopic: string; content_type: string; payload: string });
    }, 15_000);
    assert.deepEqual(frames.map((f) => [f.subtopic, f.content_type]), [['bench/1', 'application/senml+json'], ['', 'application/json'], ['', 'application/octet-stream']]);
    assert.equal(Buffer.from(frames[2]!.payload, 'base64').toString('latin1'), '\u0001\u0002raw');
    tail.kill('SIGINT');
    assert.equal(await exitOf(tail), 0, 'Ctrl-C ends subscribe with exit 0');

    const records = await eventually(async () => {
      const page = await u.json<{ total: number; messages: { name: string; value: number; unit: string; subtopic: string }[] }>(['messages', 'query', channel, '--subtopic', 'bench/1']);
      assert.equal(page.total, 1);
      return page.messages;
    });
    assert.deepEqual(records.map((r) => [r.name, r.value, r.unit, r.subtopic]), [['lab:temp', 21.5, 'Cel', 'bench/1']]);
    const docs = await u.json<{ messages: { document: unknown }[] }>(['messages', 'query', channel, '--type', 'json']);
    assert.deepEqual(docs.messages.map((m) => m.document), [{ humidity: 40 }]);
    const avg = await u.json<{ messages: { name: string; value: number; count: number }[] }>(['messages', 'aggregate', channel, '--name', 'lab:temp', '--aggregation', 'avg', '--interval', '1h']);
    assert.deepEqual(avg.messages.map((m) => [m.name, m.value, m.count]), [['lab:temp', 21.5, 1]]);
    const csv = join(u.home, 'out.csv');
    const exported = await u.run(['messages', 'export', channel, '--subtopic', 'bench/1', '-o', csv]);
    assert.equal(exported.code, 0, exported.stderr);
    const rows = readFileSync(csv, 'utf8').trimEnd().split('\r\n');
    assert.match(rows[0]!, /^channel,subtopic,publisher,protocol,name,unit,time/);
    assert.equal(rows.length, 2);
    assert.ok(rows[1]!.includes('lab:temp') && rows[1]!.includes('21.5'));
  });

  test('registrations are created with a key file or a fingerprint, imported from CSV all or nothing, listed, shown, revoked and deleted', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string }>(['orgs', 'create', 'registry']);
    assert.equal((await u.run(['orgs', 'use', created.id])).code, 0);
    const channel = (await u.json<{ id: string }>(['channels', 'create', 'telemetry'])).id;
    const group = (await u.json<{ id: string }>(['groups', 'create', 'line-1'])).id;

    type Registration = { id: string; serial: string; model: string; state: string; key_fingerprint: string | null; channel_ids: string[]; group_ids: string[] };
    const meter = deviceRequest('/CN=SN-100');
    const keyFile = join(u.home, 'sn-100.pub.pem');
    writeFileSync(keyFile, meter.publicKey);
    const byFile = await u.json<Registration>(['registrations', 'create', 'SN-100', '--model', 'meter', '--public-key', keyFile, '--channel', channel, '--group', group]);
    assert.deepEqual([byFile.serial, byFile.model, byFile.state, byFile.key_fingerprint, byFile.channel_ids, byFile.group_ids], ['SN-100', 'meter', 'pending', meter.fingerprint, [channel], [group]]);
    const other = deviceRequest('/CN=SN-101');
    const byFingerprint = await u.json<Registration>(['registrations', 'create', 'SN-101', '--public-key', other.fingerprint]);
    assert.equal(byFingerprint.key_fingerprint, other.fingerprint);

    // three rows: a PEM quoted over several lines with a channel, a fingerprint, no key with two groups
    const second = (await u.json<{ id: string }>(['groups', 'create', 'line-2'])).id;
    const pemKey = deviceRequest('/CN=SN-1');
    const csv = join(u.home, 'registrations.csv');
    writeFileSync(csv, `serial,model,public_key,channel_ids,group_ids\nSN-1,meter,"${pemKey.publicKey.trim()}",${channel},\nSN-2,gateway,${other.fingerprint.toUpperCase()},,\nSN-3,,,,${group};${second}\n`);
    const imported = await u.json<{ registrations: Registration[] }>(['registrations', 'import', csv]);
    assert.deepEqual(imported.registrations.map((r) => [r.serial, r.model, r.key_fingerprint, r.channel_ids, r.group_ids.sort()]), [
      ['SN-1', 'meter', pemKey.fingerprint, [channel], []],
      ['SN-2', 'gateway', other.fingerprint, [], []],
      ['SN-3', '', null, [], [group, second].sort()],
    ]);

    // a taken serial: the platform names it and registers none of the file, on standard input too
    const refused = await u.run(['registrations', 'import', '-'], 'serial\nSN-4\nSN-2\nSN-5\n');
    assertRefused(refused, 'registration.serial_taken');
    assert.match(refused.stderr, /SN-2/);
    const pending = await u.json<{ total: number; registrations: Registration[] }>(['registrations', 'list', '--state', 'pending', '--all']);
    assert.deepEqual(pending.registrations.map((r) => r.serial).sort(), ['SN-1', 'SN-100', 'SN-101', 'SN-2', 'SN-3']);
    assert.equal((await u.json<{ total: number }>(['registrations', 'list', '--serial', 'SN-4'])).total, 0);

    // more than 1000 rows go 1000 at a time: a refused request leaves those before it, and says which
    const many = Array.from({ length: 1001 }, (_, i) => `BULK-${String(i).padStart(4, '0')}`);
    many[1000] = 'SN-3';
    const chunked = await u.run(['registrations', 'import', '-'], `serial\n${many.join('\n')}\n`);
    assert.equal(chunked.code, 1, chunked.stdout + chunked.stderr);
    assert.match(chunked.stderr, /^1001 rows go in 2 requests of at most 1000: each is all or nothing, the file as a whole is not\n/);
    assert.match(chunked.stderr, /fleetwire: rows 1001-1001: .*\(registration\.serial_taken\).*SN-3.*rows 1-1000 were registered before \(up to serial BULK-0999\)/);
    assert.equal((await u.json<{ total: number }>(['registrations', 'list', '--limit', '1'])).total, 1005);

    // the table for people
    const table = await u.run(['registrations', 'list', '--serial', 'SN-100']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+SERIAL\s+MODEL\s+STATE\s+DEVICE\s+CREATED$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4)), [[byFile.id, 'SN-100', 'meter', 'pending']]);

    const shown = await u.json<Registration>(['registrations', 'show', imported.registrations[2]!.id]);
    assert.equal(shown.serial, 'SN-3');
    assert.equal((await u.json<Registration>(['registrations', 'revoke', shown.id])).state, 'revoked');
    assertRefused(await u.run(['registrations', 'resume', shown.id]), 'registration.state');
    await u.json(['registrations', 'delete', shown.id]);
    assertRefused(await u.run(['registrations', 'show', shown.id]), 'registration.not_found');
  });

  test('manufacturer-cas: a maker CA is created from its PEM file, listed, shown, its allow-list replaced, deleted; a file that is no certificate is refused before any request', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string }>(['orgs', 'create', 'makers']);
    assert.equal((await u.run(['orgs', 'use', created.id])).code, 0);
    const maker = certificateAuthority([]);
    const made = await u.json<{ id: string; serials: string[]; fingerprint: string; certificate: string }>(['manufacturer-cas', 'create', 'Acme', maker.ca, '--serial', 'AC-*,AD-1']);
    assert.deepEqual(made.serials, ['AC-*', 'AD-1']);
    assert.match(made.certificate, /BEGIN CERTIFICATE/);
    const table = await u.run(['manufacturer-cas', 'list']);
    assert.ok(table.stdout.includes(made.id) && table.stdout.includes('AC-* AD-1'), table.stdout);
    const shown = await u.run(['manufacturer-cas', 'show', made.id]);
    assert.match(shown.stdout, new RegExp(`^fingerprint\\s+${made.fingerprint}$`, 'm'));
    assert.ok(!shown.stdout.includes('BEGIN CERTIFICATE'), 'the record for people leaves the PEM out');
    assert.deepEqual((await u.json<{ serials: string[] }>(['manufacturer-cas', 'update', made.id, '--serial', 'AE-*'])).serials, ['AE-*']);
    assertRefused(await u.run(['manufacturer-cas', 'create', 'Acme', maker.ca, '--serial', 'X']), 'manufacturer_ca.exists');
    const notPem = await u.run(['manufacturer-cas', 'create', 'Bad', maker.serverKey, '--serial', 'X']);
    assert.equal(notPem.code, 2, notPem.stderr);
    await u.json(['manufacturer-cas', 'delete', made.id]);
    assertRefused(await u.run(['manufacturer-cas', 'show', made.id]), 'manufacturer_ca.not_found');
  });

  test('an enrolment token is printed once and listed without itself; a device enrols; its certificate is listed, shown, revoked; the audit trail and the CA are printed; a registration is suspended, resumed, reset and revoked', async () => {
    const u = await signedIn();
    const created = await u.json<{ id: string }>(['orgs', 'create', 'enrolment']);
    assert.equal((await u.run(['orgs', 'use', created.id])).code, 0);

    // for people: the record with the token in it, and the reminder on standard error
    const made = await u.run(['enrolment-tokens', 'create', '--expires-in', '15m', '--serial-pattern', 'GW-*']);
    assert.equal(made.code, 0, made.stderr);
    const token = /^token\s+(fwe_\S+)$/m.exec(made.stdout)?.[1];
    const tokenId = /^id\s+(\S+)$/m.exec(made.stdout)?.[1];
    assert.ok(token && tokenId, made.stdout);
    assert.match(made.stdout, /^serial_pattern\s+GW-\*$/m);
    assert.match(made.stderr, /^the token is shown only this once/);
    const expires = Date.parse(/^expires_at\s+(\S+)$/m.exec(made.stdout)![1]!);
    assert.ok(Math.abs(expires - (Date.now() + 15 * 60_000)) < 120_000, `expires in 15 minutes: ${new Date(expires).toISOString()}`);
    const listed = await u.json<{ tokens: Record<string, unknown>[] }>(['enrolment-tokens', 'list']);
    assert.deepEqual(listed.tokens.map((t) => [t.id, t.serial_pattern, 'token' in t]), [[tokenId, 'GW-*', false]]);
    const table = await u.run(['enrolment-tokens', 'list']);
    assert.ok(table.stdout.includes(tokenId!) && !table.stdout.includes(token!), table.stdout);

    // a serial outside the pattern is refused (the audit trail keeps it), then the device enrols
    const outside = await call(server.api, 'POST', '/enrol', { body: { csr: deviceRequest('/CN=SN-9').csr, token } });
    assert.equal(outside.status, 403);
    const gateway = deviceRequest('/serialNumber=GW-1/CN=gateway');
    const enrolled = await call<{ serial: string; device_id: string; registration_id: string; certificate: string; chain: string[] }>(server.api, 'POST', '/enrol', { body: { csr: gateway.csr, token } });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const e = enrolled.body;
    const used = await u.json<{ tokens: { used_at: string | null; registration_id: string | null }[] }>(['enrolment-tokens', 'list']);
    assert.equal(used.tokens[0]!.registration_id, e.registration_id);

    const refusals = await u.json<{ events: { action: string; outcome: string; code: string | null }[] }>(['identity', 'events', '--refused']);
    assert.deepEqual(refusals.events.map((ev) => [ev.action, ev.outcome, ev.code]), [['enrol', 'refused', 'enrolment.serial_not_allowed']]);
    const trail = await u.json<{ events: { action: string }[] }>(['identity', 'events', '--registration', e.registration_id]);
    assert.ok(trail.events.some((ev) => ev.action === 'enrol'), JSON.stringify(trail.events));

    type Certificate = { serial: string; device_id: string; status: string; revocation_reason: string | null; certificate?: string };
    const certs = await u.json<{ certificates: Certificate[] }>(['certificates', 'list', '--device', e.device_id]);
    assert.deepEqual(certs.certificates.map((c) => [c.serial, c.status]), [[e.serial, 'active']]);
    // 90 days by default: within 91 days from now, not within 30
    assert.equal((await u.json<{ total: number }>(['certificates', 'list', '--expiring-before', '91d'])).total, 1);
    assert.equal((await u.json<{ total: number }>(['certificates', 'list', '--expiring-before', '30d'])).total, 0);

    // --pem prints the certificate alone: openssl reads it and finds the serial
    const pem = await u.run(['certificates', 'show', e.serial, '--pem']);
    assert.equal(pem.code, 0, pem.stderr);
    assert.equal(pem.stdout.trim(), e.certificate.trim());
    const x509 = spawnSync('openssl', ['x509', '-noout', '-serial'], { input: pem.stdout, encoding: 'utf8' });
    assert.equal(x509.status, 0, x509.stderr);
    assert.equal(x509.stdout.trim().replace(/^serial=/, '').toLowerCase().replace(/^0+/, ''), e.serial.replace(/^0+/, ''));
    const facts = await u.run(['certificates', 'show', e.serial]);
    assert.match(facts.stdout, /^status\s+active$/m);
    assert.ok(!facts.stdout.includes('BEGIN CERTIFICATE'), 'the record for people leaves the PEM to --pem');

    const revoked = await u.json<Certificate>(['certificates', 'revoke', e.serial, '--reason', 'keyCompromise']);
    assert.deepEqual([revoked.status, revoked.revocation_reason], ['revoked', 'keyCompromise']);
    assert.deepEqual((await u.json<{ certificates: Certificate[] }>(['certificates', 'list', '--status', 'revoked'])).certificates.map((c) => c.serial), [e.serial]);
    assert.equal((await u.json<{ total: number }>(['certificates', 'list', '--status', 'active'])).total, 0);

    // the CA as a PEM bundle: the issuing CA then the root, as the enrolment's chain
    const ca = await u.run(['identity', 'ca']);
    assert.equal(ca.code, 0, ca.stderr);
    const blocks = ca.stdout.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    assert.deepEqual(blocks, e.chain.map((c) => c.trim()));

    // a deleted token enrols nothing
    const spare = await u.json<{ id: string; token: string }>(['enrolment-tokens', 'create']);
    await u.json(['enrolment-tokens', 'delete', spare.id]);
    assert.equal((await call(server.api, 'POST', '/enrol', { body: { csr: deviceRequest('/CN=GW-2').csr, token: spare.token } })).status, 401);
    assert.deepEqual((await u.json<{ tokens: { id: string }[] }>(['enrolment-tokens', 'list'])).tokens.map((t) => t.id), [tokenId]);

    // a registered key enrols without a token; then its registration goes through each state
    const meter = deviceRequest('/CN=SN-200');
    const registration = await u.json<{ id: string }>(['registrations', 'create', 'SN-200', '--public-key', meter.fingerprint]);
    const second = await call<{ serial: string; device_id: string }>(server.api, 'POST', '/enrol', { body: { csr: meter.csr } });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    const state = async (verb: string) => (await u.json<{ state: string }>(['registrations', verb, registration.id])).state;
    assert.equal(await state('suspend'), 'suspended');
    assert.equal(await state('resume'), 'enrolled');
    assertRefused(await u.run(['registrations', 'delete', registration.id]), 'registration.state');
    assert.equal(await state('reset'), 'pending');
    const superseded = await u.json<Certificate>(['certificates', 'show', second.body.serial]);
    assert.deepEqual([superseded.status, superseded.revocation_reason], ['revoked', 'superseded']);
    assert.equal(await state('revoke'), 'revoked');
    await u.json(['registrations', 'delete', registration.id]);
  });

  test('a refusal exits 1 with the problem\'s title and code: a viewer creating a device, an unknown id, a bad message', async () => {
    const v = await signedIn(viewer);
    const listed = await v.json<{ devices: unknown[] }>(['devices', 'list', '--org', org]);
    assert.deepEqual(listed.devices, []);
    const refused = await v.run(['devices', 'create', 'sneaky', '--org', org]);
    assertRefused(refused, 'auth.forbidden');
    assert.match(refused.stderr, /^fleetwire: Not allowed \(auth\.forbidden\)/);
    assertRefused(await v.run(['devices', 'show', unknownId, '--org', org, '--json']), 'device.not_found');
    assertRefused(await v.run(['orgs', 'show', unknownId]), 'org.not_found');
    const a = await signedIn();
    const channel = (await a.json<{ id: string }>(['channels', 'create', 'strict', '--org', org])).id;
    assertRefused(await a.run(['publish', channel, 'not senml']), 'message.invalid_payload');
  });

  test('a command line that is wrong exits 2 and names what is wrong', async () => {
    const u = await signedIn();
    assertUsage(await u.run(['devices', 'frobnicate']), /unknown command 'frobnicate'/);
    assertUsage(await u.run(['devices']), /Usage: fleetwire devices/);
    assertUsage(await u.run(['devices', 'list', '--limit', 'many']), /--limit is a whole number/);
    assertUsage(await u.run(['connect', '--device', unknownId]), /required option '--channel <ids>' not specified/);
    assertUsage(await u.run(['members', 'add', 'x@example.com']), /required option '--role <role>'/);
    assertUsage(await u.run(['devices', 'create', 'x', '--metadata', '[1]']), /a JSON object/);
    // no organization given and none chosen: the command says how to choose one
    assertUsage(await u.run(['devices', 'list']), /no organization: pass --org <id\|name>, or choose one with fleetwire orgs use/);
    assertUsage(await user().run(['login', '--email', admin.email, '--password-stdin'], admin.password), /which platform\? pass --url/);
    assertUsage(await u.run(['login', '--url', server.api]), /pass --email/);
    assertUsage(await u.run(['enrolment-tokens', 'create', '--expires-in', '10s']), /--expires-in is from 1m to 30d/);
    assertUsage(await u.run(['certificates', 'list', '--expiring-before', 'soon']), /the time is ISO 8601/);
    assertUsage(await u.run(['certificates', 'revoke', 'ab', '--reason', 'lost']), /'lost' is invalid\. Allowed choices are unspecified, keyCompromise/);
    assertUsage(await u.run(['certificates', 'show', 'ab', '--pem', '--json']), /cannot be used with option '--json'/);
    assertUsage(await u.run(['registrations', 'create', 'SN-1', '--public-key', join(u.home, 'missing.pem'), '--org', org]), /cannot read .*missing\.pem: ENOENT/);
    assertUsage(await u.run(['registrations', 'import', '-', '--org', org], 'serial,colour\nSN-1,red\n'), /the columns are serial, model, public_key, channel_ids, group_ids \(serial required\), not colour/);
  });

  test('every command takes --help, prints its usage and exits 0', async () => {
    const u = user();
    for (const args of [['login'], ['devices'], ['devices', 'import'], ['publish'], ['subscribe'], ['messages', 'aggregate'], ['tokens', 'create'], ['registrations', 'import'], ['enrolment-tokens', 'create'], ['certificates', 'revoke'], ['identity', 'ca'], ['completion']]) {
      const res = await u.run([...args, '--help']);
      assert.equal(res.code, 0, `${args.join(' ')} --help: ${res.stderr}`);
      assert.match(res.stdout, new RegExp(`^Usage: fleetwire ${args.join(' ')}`));
    }
  });

  test('FLEETWIRE_URL and FLEETWIRE_TOKEN override the stored login', async () => {
    const a = await signedIn();
    const { token } = await login(server.api, admin.email, admin.password);
    const pat = await call<{ token: string }>(server.api, 'POST', '/users/me/tokens', { token, body: { name: 'env', org_id: org, actions: ['devices:read'], expires_in: 3600 } });
    // with no stored login at all, the variables are enough
    const scripted = user({ FLEETWIRE_URL: server.api, FLEETWIRE_TOKEN: pat.body.token });
    assert.equal((await scripted.json<{ total: number }>(['devices', 'list', '--org', org])).total, 0);
    // the token is the variable's, not the stored one: this one may not create devices
    assertRefused(await a.run(['devices', 'create', 'x', '--org', org], '', { FLEETWIRE_TOKEN: pat.body.token }), 'auth.token_scope');
    // a stored login is never sent to another platform than its own
    const other = `http://127.0.0.1:${await closedPort()}`;
    const elsewhere = await a.run(['whoami'], '', { FLEETWIRE_URL: `${other}/` });
    assert.equal(elsewhere.code, 1);
    assert.equal(elsewhere.stderr, `fleetwire: not logged in to ${other}: run fleetwire login\n`);
    // a platform that cannot be reached is one line too
    const down = await a.run(['whoami'], '', { FLEETWIRE_URL: other, FLEETWIRE_TOKEN: 'x' });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `fleetwire: cannot reach the platform at ${other}: ECONNREFUSED\n`);
    // and `fleetwire start` in the same shell does not take them for unknown settings
    const check = await fleetwire(['config', 'check'], { ...cliEnv(dataFolder()), FLEETWIRE_URL: server.api, FLEETWIRE_TOKEN: 'x' });
    assert.equal(check.code, 0, check.stderr);
  });

  test('completion scripts are printed for bash and zsh and complete the commands', async () => {
    const u = user();
    const bash = await u.run(['completion', 'bash']);
    assert.equal(bash.code, 0, bash.stderr);
    const script = join(u.home, 'fleetwire.bash');
    writeFileSync(script, bash.stdout);
    const complete = (words: string[]) => {
      const res = spawnSync('bash', ['-c', `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _fleetwire; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
      assert.equal(res.status, 0, res.stderr);
      return res.stdout.trim().split('\n');
    };
    assert.ok(complete(['fleetwire', 'dev']).includes('devices'));
    assert.deepEqual(complete(['fleetwire', 'devices', 'ro']), ['rotate-secret']);
    assert.ok(complete(['fleetwire', 'devices', 'list', '--']).includes('--all'));
    assert.deepEqual(complete(['fleetwire', 'reg']), ['registrations']);
    assert.deepEqual(complete(['fleetwire', 'registrations', 're']).sort(), ['reset', 'resume', 'revoke']);
    const commandsOf = (words: string[]) => complete(words).filter((w) => !w.startsWith('-')).sort();
    assert.deepEqual(commandsOf(['fleetwire', 'enrolment-tokens', '']), ['create', 'delete', 'list']);
    assert.ok(complete(['fleetwire', 'certificates', 'list', '--']).includes('--expiring-before'));
    assert.deepEqual(commandsOf(['fleetwire', 'identity', '']), ['ca', 'events']);

    const zsh = await u.run(['completion', 'zsh']);
    assert.equal(zsh.code, 0, zsh.stderr);
    assert.match(zsh.stdout, /^#compdef fleetwire\n/);
    assert.match(zsh.stdout, /\('devices'\)\n\s+cmds=\('list:list devices' .*'rotate-secret:give a device a new secret/);
    assert.match(zsh.stdout, /compdef _fleetwire fleetwire/);
    // zsh itself runs the script: compinit's _describe and _files are stood in for by functions that
    // print what they were given, so the words the script offers can be read
    const zshScript = join(u.home, '_fleetwire');
    writeFileSync(zshScript, zsh.stdout);
    const zshOffers = (words: string[]) => {
      const program = [
        'compdef() { :; }',
        '_files() { print -- "(files)"; }',
        // _describe -t <tag> <description> <array name>: the array's entries, without their descriptions
        '_describe() { local -a entries; entries=("${(@P)4}"); print -l -- "${entries[@]%%:*}"; }',
        `source ${zshScript}`,
        `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}`,
        '_fleetwire',
      ].join('\n');
      const res = spawnSync('zsh', ['-f', '-c', program], { encoding: 'utf8' });
      assert.equal(res.status, 0, res.stderr);
      return res.stdout.trim().split('\n');
    };
    assert.ok(zshOffers(['fleetwire', '']).includes('devices'));
    assert.ok(zshOffers(['fleetwire', 'devices', '']).includes('rotate-secret'));
    assert.ok(zshOffers(['fleetwire', '']).includes('certificates'));
    assert.ok(zshOffers(['fleetwire', 'certificates', 'show', '--']).includes('--pem'));
    assert.ok(zshOffers(['fleetwire', 'devices', 'list', '--']).includes('--all'));
    assert.ok(!zshOffers(['fleetwire', 'devices', '']).includes('login'), 'a subcommand offers its own commands only');
    assertUsage(await u.run(['completion', 'fish']), /'fish' is invalid for argument 'shell'/);
  });
});

test('the CLI\'s API types are those openapi-typescript makes of docs/openapi.json (npm run docs regenerates them)', () => {
  const cli = join(dirname(require.resolve('openapi-typescript/package.json')), 'bin', 'cli.js');
  const res = spawnSync(process.execPath, [cli, join(root, '..', '..', 'docs', 'openapi.json')], { encoding: 'utf8', cwd: root });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(readFileSync(join(root, 'src', 'cli', 'api-types.ts'), 'utf8'), res.stdout, 'src/cli/api-types.ts is stale: run npm run docs');
});
