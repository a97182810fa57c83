// The CLI as an operator runs it: separate processes, environment variables, a data folder, signals.
// They run on the database of the pass: the data folder's fleetwire.db, or in the PostgreSQL pass a
// fresh database per data folder (test/helpers/cli.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { announcedPort, call, cleanupCli, cliEnv, dataFolder, login, packageVersion, root, runCli, startCli, type LogLine, type Server } from './helpers/cli.js';
import { testDatabaseKind } from './helpers/database.js';
import { eventually } from './helpers/eventually.js';
import { selfSignedCertificate } from './helpers/tls.js';
const adminEmail = 'admin@example.com';
const adminPassword = 'change-me-please';

type Result = { code: number | null; stdout: string; stderr: string };

/** A failure an operator can act on: exit 1, one line on standard error that names `setting`, no stack trace. */
function assertOneLineNaming(res: Result, setting: string): void {
  assert.equal(res.code, 1, res.stderr);
  const lines = res.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${res.stderr}`);
  assert.match(lines[0]!, /^fleetwire: /);
  assert.ok(lines[0]!.includes(setting), `the line names ${setting}: ${lines[0]}`);
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
}

/** A folder path that does not exist yet, in a data folder the helpers remove: proof that a command created nothing. */
function untouchedFolder(): string {
  return join(dataFolder(), 'not-created');
}

/** A TCP port something else holds, and a way to let it go. */
async function takenPort(): Promise<{ port: number; server: NetServer }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** A TCP port nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const { port, server } = await takenPort();
  await new Promise((r) => server.close(r));
  return port;
}

/** The SHA-256 fingerprint of the certificate a TLS client is shown on `port`. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert.fingerprint256);
      else reject(new Error('no certificate'));
    });
    socket.once('error', reject);
  });
}

function linesWith(server: Server, msg: string): LogLine[] {
  return server.logs.filter((l) => l.msg === msg);
}

/** Sends SIGHUP and waits for the reload it causes to be logged (the `count`-th 'settings reloaded' line). */
async function sighup(server: Server, count: number): Promise<LogLine> {
  server.child.kill('SIGHUP');
  return eventually(() => {
    const lines = linesWith(server, 'settings reloaded');
    assert.equal(lines.length, count, `the reload is logged (the last lines: ${server.logs.slice(-6).map((l) => l.msg).join(' | ')})`);
    return lines.at(-1)!;
  }, 15_000);
}

// Each test has its own data folder, so they run side by side (process start-up dominates), a
// few at a time: dozens of processes at once on a shared machine would time each other out.
describe('fleetwire CLI', { concurrency: 3 }, () => {
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

  test('version, -v and --version print the package version', async () => {
    for (const args of [['version'], ['-v'], ['--version']]) {
      const res = await runCli(args, cliEnv(dataFolder()));
      assert.equal(res.code, 0, args.join(' '));
      assert.equal(res.stdout, `${packageVersion}\n`, args.join(' '));
    }
  });

  test('--help and -h on every command print its usage and exit 0, without reading settings or creating anything', async () => {
    const commands = [[], ['start'], ['migrate'], ['admin'], ['admin', 'create'], ['config'], ['config', 'show'], ['config', 'check'], ['config', 'reference'], ['version']];
    const dir = untouchedFolder();
    // a bad setting, a first admin and a database: none of them is read, nothing starts or is created
    const env = cliEnv(dir, { FLEETWIRE_HTTP_PORT: 'not-a-port', FLEETWIRE_ADMIN_EMAIL: adminEmail, FLEETWIRE_ADMIN_PASSWORD: adminPassword });
    const runs = commands.flatMap((c) => [[...c, '--help'], [...c, '-h']]).concat(commands.filter((c) => c.length === 1).map((c) => ['help', ...c]));
    // two at a time: the machine is shared
    for (let i = 0; i < runs.length; i += 2) {
      await Promise.all(runs.slice(i, i + 2).map(async (args) => {
        const res = await runCli(args, env);
        const words = args.filter((a) => a !== '--help' && a !== '-h' && a !== 'help');
        assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
        assert.ok(res.stdout.startsWith(`Usage: fleetwire${words.map((w) => ` ${w}`).join('')} [options]`), `${args.join(' ')} prints its usage:\n${res.stdout}`);
        assert.match(res.stdout, /-h, --help/, `${args.join(' ')} lists -h, --help`);
        assert.equal(res.stderr, '', args.join(' '));
      }));
    }
    assert.ok(!existsSync(dir), 'no data folder was created');
  });

  test('the top-level usage lists every command', async () => {
    const res = await runCli(['--help'], cliEnv(untouchedFolder()));
    for (const command of ['start', 'migrate', 'admin', 'config', 'version', 'help']) assert.match(res.stdout, new RegExp(`^  ${command}\\b`, 'm'), command);
  });

  test('a wrong command line exits 2 with a message, and no command prints the usage', async () => {
    const dir = untouchedFolder();
    for (const [args, why] of [[['bogus'], /unknown command 'bogus'/], [['start', '--bogus'], /unknown option '--bogus'/], [['admin', 'create'], /--email/], [['admin', 'bogus'], /unknown command 'bogus'/]] as const) {
      const res = await runCli([...args], cliEnv(dir));
      assert.equal(res.code, 2, args.join(' '));
      assert.match(res.stderr, why);
      assert.match(res.stderr, /--help/, 'says where the usage is');
    }
    const bare = await runCli([], cliEnv(dir));
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /Usage: fleetwire/);
    assert.ok(!existsSync(dir));
  });

  test('config shows every effective setting and where it came from, secrets masked', async () => {
    const dir = untouchedFolder();
    const key = 'ab'.repeat(32);
    const file = join(dataFolder(), 'fleetwire.json');
    writeFileSync(file, JSON.stringify({ http_body_limit: '2MiB', nats_url: 'nats://reader:nats-password-5@nats.example:4222' }));
    const env = cliEnv(dir, {
      FLEETWIRE_SECRET_KEY: key,
      FLEETWIRE_DATABASE_URL: 'postgres://fleetwire:db-password-7@db.example:5432/fleet?sslmode=require',
      FLEETWIRE_ADMIN_EMAIL: adminEmail,
      FLEETWIRE_ADMIN_PASSWORD: adminPassword,
      FLEETWIRE_CONFIG: file,
    });
    const res = await runCli(['config'], env);
    assert.equal(res.code, 0, res.stderr);
    for (const secret of [key, 'db-password-7', 'nats-password-5', adminPassword]) assert.ok(!res.stdout.includes(secret), `${secret} is masked`);
    const line = (name: string) => res.stdout.split('\n').find((l) => l.startsWith(`${name}=`));
    assert.match(line('FLEETWIRE_SECRET_KEY')!, /^FLEETWIRE_SECRET_KEY=\*\*\* +# environment$/);
    assert.match(line('FLEETWIRE_ADMIN_PASSWORD')!, /^FLEETWIRE_ADMIN_PASSWORD=\*\*\* +# environment$/);
    assert.match(line('FLEETWIRE_DATABASE_URL')!, /^FLEETWIRE_DATABASE_URL=postgres:\/\/fleetwire:\*\*\*@db\.example:5432\/fleet\?sslmode=require +# environment$/);
    assert.match(line('FLEETWIRE_NATS_URL')!, /^FLEETWIRE_NATS_URL=nats:\/\/reader:\*\*\*@nats\.example:4222 +# file$/);
    assert.match(line('FLEETWIRE_HTTP_BODY_LIMIT')!, /=2MiB +# file$/);
    assert.match(line('FLEETWIRE_ACCESS_TOKEN_TTL')!, /=15m +# default$/);
    assert.match(line('FLEETWIRE_MQTT_OPEN_PORT')!, /=off +# default$/);
    const { settings } = await import('../src/core/config.js');
    for (const s of Object.values(settings)) assert.ok(line(s.env) !== undefined, `${s.env} is shown`);

    // --config names the file as FLEETWIRE_CONFIG does
    const withoutVariable = { ...env };
    delete withoutVariable.FLEETWIRE_CONFIG;
    const json = await runCli(['--config', file, 'config', '--json'], withoutVariable);
    assert.equal(json.code, 0, json.stderr);
    const values = JSON.parse(json.stdout) as Record<string, string>;
    assert.equal(values.http_body_limit, '2MiB', 'read from the --config file');
    assert.equal(values.nats_url, 'nats://reader:***@nats.example:4222');
    assert.equal(values.secret_key, '***');
    assert.equal(values.database_url, 'postgres://fleetwire:***@db.example:5432/fleet?sslmode=require');
    assert.ok(!json.stdout.includes('db-password-7'));
    assert.ok(!existsSync(dir), 'config creates no data folder');
  });

  test('config check exits 0 on good settings and creates nothing', async () => {
    const dir = untouchedFolder();
    const tls = selfSignedCertificate();
    try {
      const res = await runCli(['config', 'check'], cliEnv(dir, { FLEETWIRE_SECRET_KEY: 'cd'.repeat(32), FLEETWIRE_HTTP_TLS_CERT: tls.certFile, FLEETWIRE_HTTP_TLS_KEY: tls.keyFile }));
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, 'the settings are valid\n');
      assert.ok(!existsSync(dir), 'no data folder, no key');
    } finally {
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });

  describe('bad settings: config check and start each say so in one line naming the setting', () => {
    const tlsA = selfSignedCertificate();
    const tlsB = selfSignedCertificate();
    const acl = join(dataFolder(), 'open.acl');
    writeFileSync(acl, 'allow publish #\npermit everything\n');
    after(() => {
      rmSync(tlsA.dir, { recursive: true, force: true });
      rmSync(tlsB.dir, { recursive: true, force: true });
    });
    const cases: { what: string; setting: string; env: Record<string, string> }[] = [
      { what: 'a value that does not parse', setting: 'FLEETWIRE_HTTP_PORT', env: { FLEETWIRE_HTTP_PORT: 'abc' } },
      { what: 'a secret key too short', setting: 'FLEETWIRE_SECRET_KEY', env: { FLEETWIRE_SECRET_KEY: 'abcdef0123456789' } },
      { what: 'an HTTP TLS certificate file missing', setting: 'FLEETWIRE_HTTP_TLS_CERT', env: { FLEETWIRE_HTTP_TLS_CERT: join(tlsA.dir, 'missing.pem'), FLEETWIRE_HTTP_TLS_KEY: tlsA.keyFile } },
      { what: 'an MQTT TLS key file missing', setting: 'FLEETWIRE_MQTT_TLS_KEY', env: { FLEETWIRE_MQTT_TLS_CERT: tlsA.certFile, FLEETWIRE_MQTT_TLS_KEY: join(tlsA.dir, 'missing.key'), FLEETWIRE_MQTTS_PORT: '0' } },
      { what: 'a certificate and a key that do not match', setting: 'FLEETWIRE_HTTP_TLS_CERT', env: { FLEETWIRE_HTTP_TLS_CERT: tlsA.certFile, FLEETWIRE_HTTP_TLS_KEY: tlsB.keyFile } },
      { what: 'a host that does not resolve', setting: 'FLEETWIRE_HOST', env: { FLEETWIRE_HOST: 'no-such-host.invalid' } },
      { what: 'an open-listener ACL that does not parse', setting: 'FLEETWIRE_MQTT_OPEN_ACL_FILE', env: { FLEETWIRE_MQTT_OPEN_PORT: '0', FLEETWIRE_MQTT_OPEN_ACL_FILE: acl } },
    ];
    for (const c of cases) {
      test(`${c.what}: config check and start exit 1 naming ${c.setting}`, async () => {
        const dir = untouchedFolder();
        assertOneLineNaming(await runCli(['config', 'check'], cliEnv(dir, c.env)), c.setting);
        assertOneLineNaming(await runCli(['start'], cliEnv(dir, c.env)), c.setting);
        assert.ok(!existsSync(dir), 'nothing was created before the check failed');
      });
    }
  });

  describe('start-up failures are one line naming the setting', () => {
    test('PostgreSQL unreachable names FLEETWIRE_DATABASE_URL without its password', async () => {
      const port = await closedPort();
      const res = await runCli(['start'], cliEnv(dataFolder(), { FLEETWIRE_DATABASE_URL: `postgres://fleetwire:db-password-7@127.0.0.1:${port}/test` }));
      assertOneLineNaming(res, 'FLEETWIRE_DATABASE_URL');
      assert.match(res.stderr, new RegExp(`postgres://fleetwire:\\*\\*\\*@127\\.0\\.0\\.1:${port}/test`));
      assert.ok(!res.stderr.includes('db-password-7') && !res.stdout.includes('db-password-7'), 'the password is not shown');
      // migrate opens the database itself, and says so the same way
      const migrated = await runCli(['migrate'], cliEnv(dataFolder(), { FLEETWIRE_DATABASE_URL: `postgres://fleetwire:db-password-7@127.0.0.1:${port}/test` }));
      assertOneLineNaming(migrated, 'FLEETWIRE_DATABASE_URL');
      assert.ok(!migrated.stderr.includes('db-password-7'));
    });

    for (const [setting, name] of [['FLEETWIRE_HTTP_PORT', 'HTTP'], ['FLEETWIRE_MQTT_PORT', 'MQTT'], ['FLEETWIRE_MQTTS_PORT', 'MQTT over TLS'], ['FLEETWIRE_HTTPS_PORT', 'HTTPS']] as const) {
      test(`${name} port in use names ${setting}`, async () => {
        const { port, server } = await takenPort();
        try {
          assertOneLineNaming(await runCli(['start'], cliEnv(dataFolder(), { [setting]: String(port) })), setting);
        } finally {
          server.close();
        }
      });
    }
  });

  test('SIGHUP swaps the certificate TLS clients see on HTTPS and MQTTS; one that does not load keeps the old', async () => {
    const a = selfSignedCertificate();
    const b = selfSignedCertificate();
    const dir = dataFolder();
    const cert = join(dir, 'server.pem');
    const key = join(dir, 'server.key');
    copyFileSync(a.certFile, cert);
    copyFileSync(a.keyFile, key);
    const fingerprint = (c: { cert: string }) => new X509Certificate(c.cert).fingerprint256;
    const server = await startCli(cliEnv(dir, { FLEETWIRE_HTTP_TLS_CERT: cert, FLEETWIRE_HTTP_TLS_KEY: key, FLEETWIRE_MQTT_TLS_CERT: cert, FLEETWIRE_MQTT_TLS_KEY: key, FLEETWIRE_MQTTS_PORT: '0' }));
    try {
      const https = Number(new URL(server.api).port);
      const mqtts = await announcedPort(server, 'MQTT over TLS listening');
      assert.equal(await servedFingerprint(https), fingerprint(a));
      assert.equal(await servedFingerprint(mqtts), fingerprint(a));

      // a renewed certificate, written over the old files
      copyFileSync(b.certFile, cert);
      copyFileSync(b.keyFile, key);
      const reloaded = await sighup(server, 1);
      assert.deepEqual(reloaded.reloaded, ['FLEETWIRE_HTTP_TLS_CERT', 'FLEETWIRE_MQTT_TLS_CERT']);
      assert.deepEqual(reloaded.restartNeeded, []);
      assert.equal(await servedFingerprint(https), fingerprint(b));
      assert.equal(await servedFingerprint(mqtts), fingerprint(b));

      // a broken one: logged, and the listeners keep serving the last good certificate
      writeFileSync(cert, 'not a certificate\n');
      const broken = await sighup(server, 2);
      assert.deepEqual(broken.reloaded, []);
      const errors = linesWith(server, 'reload: the new TLS certificate does not load; the listener keeps the one it has');
      assert.deepEqual(errors.map((l) => [l.level, l.setting]), [[50, 'FLEETWIRE_HTTP_TLS_CERT'], [50, 'FLEETWIRE_MQTT_TLS_CERT']]);
      assert.equal(await servedFingerprint(https), fingerprint(b));
      assert.equal(await servedFingerprint(mqtts), fingerprint(b));
      assert.equal(server.child.exitCode, null, 'still running');
    } finally {
      assert.equal(await server.stop(), 0);
      rmSync(a.dir, { recursive: true, force: true });
      rmSync(b.dir, { recursive: true, force: true });
    }
  });

  test('SIGHUP applies a new log level from the config file, names settings that need a restart, and survives a broken file', async () => {
    const dir = dataFolder();
    const file = join(dir, 'fleetwire.json');
    writeFileSync(file, JSON.stringify({ log_level: 'info' }));
    const env = cliEnv(dir, { FLEETWIRE_CONFIG: file });
    delete env.FLEETWIRE_LOG_LEVEL; // from the file, so that the file can change it
    const server = await startCli(env);
    /** A request the API logs at info ('request completed'), told apart by its request id. */
    const request = async (id: string) => {
      const res = await fetch(`${server.api}/orgs`, { headers: { 'x-request-id': id } });
      assert.equal(res.status, 401);
    };
    const logged = (id: string) => server.logs.some((l) => l.reqId === id);
    try {
      await request('at-info-1');
      await eventually(() => assert.ok(logged('at-info-1'), 'requests are logged at info'));

      writeFileSync(file, JSON.stringify({ log_level: 'warn', signup: true }));
      const toWarn = await sighup(server, 1);
      assert.deepEqual(toWarn.reloaded, ['FLEETWIRE_LOG_LEVEL']);
      assert.deepEqual(toWarn.restartNeeded, ['FLEETWIRE_SIGNUP']);
      assert.deepEqual(linesWith(server, 'changed settings that take effect only after a restart').map((l) => l.settings), [['FLEETWIRE_SIGNUP']]);
      await request('at-warn');

      // back to info: the request made at warn was not logged, the next one is (logs are in order)
      writeFileSync(file, JSON.stringify({ log_level: 'info' }));
      const toInfo = await sighup(server, 2);
      assert.deepEqual(toInfo.reloaded, ['FLEETWIRE_LOG_LEVEL']);
      await request('at-info-2');
      await eventually(() => assert.ok(logged('at-info-2')));
      assert.ok(!logged('at-warn'), 'nothing at info was logged while the level was warn');

      writeFileSync(file, '{ not json');
      server.child.kill('SIGHUP');
      await eventually(() => assert.equal(linesWith(server, 'reload: the settings do not read; nothing changed').length, 1));
      const failed = linesWith(server, 'reload: the settings do not read; nothing changed')[0]!;
      assert.match(String(failed.err), /FLEETWIRE_CONFIG/);
      await request('after-broken-file');
      await eventually(() => assert.ok(logged('after-broken-file'), 'still serving, still at info'));
    } finally {
      assert.equal(await server.stop(), 0);
    }
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
