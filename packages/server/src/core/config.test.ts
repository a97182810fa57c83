// test-database: none
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, causeText, effectiveSettings, loadConfig, maskUrl, parseBytes, parseDuration, settings } from './config.js';

/** Asserts that loading `env` fails with a ConfigError whose message names `setting`. */
function assertRejected(env: NodeJS.ProcessEnv, setting: string, why?: RegExp): void {
  assert.throws(
    () => loadConfig(env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
      assert.equal(e.setting, setting);
      assert.ok(e.message.includes(setting), `message should name ${setting}: ${e.message}`);
      if (why) assert.match(e.message, why);
      return true;
    },
  );
}

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function configFile(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  test('an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.httpPort, 8080);
    assert.equal(c.httpBodyLimit, 1024 * 1024);
    assert.equal(c.trustProxy, false);
    assert.equal(c.dataDir, './data');
    assert.equal(c.databaseUrl, '');
    assert.equal(c.databasePoolSize, 10);
    assert.equal(c.secretKey, '');
    assert.equal(c.signup, false);
    assert.equal(c.passwordMinLength, 10);
    assert.equal(c.passwordHashCost, 15, 'scrypt N = 2^15, the OWASP minimum');
    assert.equal(c.natsAckWait, 5000);
    assert.equal(c.accessTokenTtl, 15 * 60_000);
    assert.equal(c.refreshTokenTtl, 30 * 86_400_000);
    assert.equal(c.loginWindow, 15 * 60_000);
    assert.equal(c.authzCacheSize, 100_000);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.shutdownTimeout, 10_000);
  });

  test('TLS listeners are on in a fresh install, on free ports when the plain ones are, and FLEETWIRE_TLS_HOSTS must name hosts', () => {
    const fresh = loadConfig({});
    assert.deepEqual([fresh.mqttsPort, fresh.httpsPort, fresh.tlsAuto, fresh.tlsHosts], [8883, 8443, true, '']);
    const free = loadConfig({ FLEETWIRE_MQTT_PORT: '0', FLEETWIRE_HTTP_PORT: '0' });
    assert.deepEqual([free.mqttsPort, free.httpsPort], [0, 0]);
    const given = loadConfig({ FLEETWIRE_MQTT_PORT: '0', FLEETWIRE_HTTP_PORT: '0', FLEETWIRE_MQTTS_PORT: '8884', FLEETWIRE_HTTPS_PORT: 'off' });
    assert.deepEqual([given.mqttsPort, given.httpsPort], [8884, -1], 'a port that is set stays as set');
    assert.equal(loadConfig({ FLEETWIRE_MQTT_PORT: '1884' }).mqttsPort, 8883);
    assert.equal(loadConfig({ FLEETWIRE_TLS_HOSTS: 'iot.example.org, 192.0.2.1' }).tlsHosts, 'iot.example.org, 192.0.2.1');
    for (const bad of ['not a host', 'a..b', ' , ', 'host:8883']) assertRejected({ FLEETWIRE_TLS_HOSTS: bad }, 'FLEETWIRE_TLS_HOSTS');
    assertRejected({ FLEETWIRE_TLS_AUTO: 'maybe' }, 'FLEETWIRE_TLS_AUTO');
  });

  test('ports parse from 0 to 65535 and nothing else', () => {
    assert.equal(loadConfig({ FLEETWIRE_HTTP_PORT: '0' }).httpPort, 0);
    assert.equal(loadConfig({ FLEETWIRE_HTTP_PORT: '65535' }).httpPort, 65535);
    assert.equal(loadConfig({ FLEETWIRE_HTTP_PORT: ' 9090 ' }).httpPort, 9090);
    for (const bad of ['abc', '-1', '65536', '80.5', '']) assertRejected({ FLEETWIRE_HTTP_PORT: bad }, 'FLEETWIRE_HTTP_PORT');
  });

  test('integers respect their bounds', () => {
    assert.equal(loadConfig({ FLEETWIRE_DATABASE_POOL_SIZE: '1' }).databasePoolSize, 1);
    assertRejected({ FLEETWIRE_DATABASE_POOL_SIZE: '0' }, 'FLEETWIRE_DATABASE_POOL_SIZE', /between 1 and 1000/);
    assertRejected({ FLEETWIRE_PASSWORD_MIN_LENGTH: '7' }, 'FLEETWIRE_PASSWORD_MIN_LENGTH');
    assert.equal(loadConfig({ FLEETWIRE_AUTHZ_CACHE_SIZE: '0' }).authzCacheSize, 0);
  });

  test('every declared minimum and maximum is enforced', () => {
    let checked = 0;
    for (const spec of Object.values(settings) as { env: string; type: string; min?: number; max?: number }[]) {
      if (spec.type !== 'integer' && spec.type !== 'duration' && spec.type !== 'bytes') continue;
      // bare numbers are units of the type: integers, milliseconds, bytes
      if (spec.min !== undefined && spec.min > 0) {
        assertRejected({ [spec.env]: String(spec.min - 1) }, spec.env);
        checked++;
      }
      if (spec.max !== undefined) {
        assert.doesNotThrow(() => loadConfig({ [spec.env]: String(spec.max) }), spec.env);
        assertRejected({ [spec.env]: String(spec.max + 1) }, spec.env);
        checked++;
      }
    }
    assert.ok(checked > 5);
  });

  test('durations take ms, s, m, h and d; a bare number is milliseconds', () => {
    assert.equal(loadConfig({ FLEETWIRE_SHUTDOWN_TIMEOUT: '30s' }).shutdownTimeout, 30_000);
    assert.equal(loadConfig({ FLEETWIRE_ACCESS_TOKEN_TTL: '15m' }).accessTokenTtl, 15 * 60_000);
    assert.equal(loadConfig({ FLEETWIRE_REFRESH_TOKEN_TTL: '30d' }).refreshTokenTtl, 30 * 86_400_000);
    assert.equal(loadConfig({ FLEETWIRE_LOGIN_WINDOW: '2h' }).loginWindow, 2 * 3_600_000);
    assert.equal(loadConfig({ FLEETWIRE_NATS_ACK_WAIT: '1s' }).natsAckWait, 1000);
    assertRejected({ FLEETWIRE_NATS_ACK_WAIT: '100ms' }, 'FLEETWIRE_NATS_ACK_WAIT');
    assert.equal(loadConfig({ FLEETWIRE_PASSWORD_HASH_COST: '10' }).passwordHashCost, 10);
    assertRejected({ FLEETWIRE_PASSWORD_HASH_COST: '9' }, 'FLEETWIRE_PASSWORD_HASH_COST');
    assertRejected({ FLEETWIRE_PASSWORD_HASH_COST: '21' }, 'FLEETWIRE_PASSWORD_HASH_COST');
    assert.equal(loadConfig({ FLEETWIRE_SHUTDOWN_TIMEOUT: '500ms' }).shutdownTimeout, 500);
    assert.equal(loadConfig({ FLEETWIRE_SHUTDOWN_TIMEOUT: '1500' }).shutdownTimeout, 1500);
    assert.equal(parseDuration('1.5s'), 1500);
    for (const bad of ['soon', '-5s', '10 weeks', '5x']) assertRejected({ FLEETWIRE_ACCESS_TOKEN_TTL: bad }, 'FLEETWIRE_ACCESS_TOKEN_TTL');
    assertRejected({ FLEETWIRE_ACCESS_TOKEN_TTL: '10ms' }, 'FLEETWIRE_ACCESS_TOKEN_TTL', /at least 1000 ms/);
  });

  test('byte sizes take binary and decimal units', () => {
    assert.equal(loadConfig({ FLEETWIRE_HTTP_BODY_LIMIT: '1MiB' }).httpBodyLimit, 1024 * 1024);
    assert.equal(loadConfig({ FLEETWIRE_HTTP_BODY_LIMIT: '64KiB' }).httpBodyLimit, 64 * 1024);
    assert.equal(loadConfig({ FLEETWIRE_HTTP_BODY_LIMIT: '2mb' }).httpBodyLimit, 2_000_000);
    assert.equal(loadConfig({ FLEETWIRE_HTTP_BODY_LIMIT: '4096' }).httpBodyLimit, 4096);
    assert.equal(parseBytes('1GiB'), 1024 ** 3);
    assertRejected({ FLEETWIRE_HTTP_BODY_LIMIT: '1 lightyear' }, 'FLEETWIRE_HTTP_BODY_LIMIT', /like 512KiB or 1MiB/);
    assertRejected({ FLEETWIRE_HTTP_BODY_LIMIT: '512' }, 'FLEETWIRE_HTTP_BODY_LIMIT', /at least 1024 bytes/);
  });

  test('booleans take true/false, 1/0 and yes/no', () => {
    for (const yes of ['true', '1', 'yes']) assert.equal(loadConfig({ FLEETWIRE_SIGNUP: yes }).signup, true);
    for (const no of ['false', '0', 'no', '']) assert.equal(loadConfig({ FLEETWIRE_SIGNUP: no }).signup, false);
    assertRejected({ FLEETWIRE_TRUST_PROXY: 'maybe' }, 'FLEETWIRE_TRUST_PROXY', /true or false/);
  });

  test('an enum accepts its listed values only', () => {
    assert.equal(loadConfig({ FLEETWIRE_LOG_LEVEL: 'debug' }).logLevel, 'debug');
    assert.equal(loadConfig({ FLEETWIRE_LOG_LEVEL: 'silent' }).logLevel, 'silent');
    assertRejected({ FLEETWIRE_LOG_LEVEL: 'loud' }, 'FLEETWIRE_LOG_LEVEL', /one of trace, debug, info/);
  });

  test('an unknown FLEETWIRE_ variable is rejected by name', () => {
    assertRejected({ FLEETWIRE_HTTP_PROT: '9000' }, 'FLEETWIRE_HTTP_PROT', /unknown setting/);
    // variables of other programs are none of our business
    assert.equal(loadConfig({ HTTP_PORT: '1', PATH: '/usr/bin' }).httpPort, 8080);
  });

  test('a removed setting is rejected with what took its place', () => {
    assertRejected({ FLEETWIRE_MQTT_CONTENT_TYPE: 'application/json' }, 'FLEETWIRE_MQTT_CONTENT_TYPE', /no longer a setting: each channel has its own content_type/);
  });

  test('the database URL must name a supported database', () => {
    assert.equal(loadConfig({ FLEETWIRE_DATABASE_URL: 'postgres://u@db:5432/fleet' }).databaseUrl, 'postgres://u@db:5432/fleet');
    assert.equal(loadConfig({ FLEETWIRE_DATABASE_URL: 'sqlite:/var/lib/fw.db' }).databaseUrl, 'sqlite:/var/lib/fw.db');
    assertRejected({ FLEETWIRE_DATABASE_URL: 'mysql://db/fleet' }, 'FLEETWIRE_DATABASE_URL');
  });

  test('settings that go together are refused alone', () => {
    assertRejected({ FLEETWIRE_HTTP_TLS_CERT: '/etc/fw/cert.pem' }, 'FLEETWIRE_HTTP_TLS_KEY', /FLEETWIRE_HTTP_TLS_CERT and FLEETWIRE_HTTP_TLS_KEY go together/);
    assertRejected({ FLEETWIRE_HTTP_TLS_KEY: '/etc/fw/key.pem' }, 'FLEETWIRE_HTTP_TLS_KEY', /go together/);
    assertRejected({ FLEETWIRE_ADMIN_EMAIL: 'admin@example.com' }, 'FLEETWIRE_ADMIN_PASSWORD', /FLEETWIRE_ADMIN_EMAIL and FLEETWIRE_ADMIN_PASSWORD go together/);
    assertRejected({ FLEETWIRE_ADMIN_PASSWORD: 'a-long-password' }, 'FLEETWIRE_ADMIN_PASSWORD');
    const both = loadConfig({ FLEETWIRE_ADMIN_EMAIL: 'admin@example.com', FLEETWIRE_ADMIN_PASSWORD: 'a-long-password' });
    assert.equal(both.adminEmail, 'admin@example.com');
    assert.equal(both.adminPassword, 'a-long-password');
  });

  test('a JSON config file supplies settings under lower-case keys', () => {
    const path = configFile('file.json', JSON.stringify({ http_port: 9443, log_level: 'warn', access_token_ttl: '5m', http_body_limit: '2MiB', signup: true, shutdown_timeout: 2500 }));
    const c = loadConfig({ FLEETWIRE_CONFIG: path });
    assert.equal(c.httpPort, 9443);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.accessTokenTtl, 5 * 60_000);
    assert.equal(c.httpBodyLimit, 2 * 1024 * 1024);
    assert.equal(c.signup, true);
    assert.equal(c.shutdownTimeout, 2500); // a JSON number is milliseconds
    assert.equal(c.host, '127.0.0.1'); // what the file leaves out keeps its default
  });

  test('the environment overrides the config file', () => {
    const path = configFile('override.json', JSON.stringify({ http_port: 9443, log_level: 'warn' }));
    const c = loadConfig({ FLEETWIRE_CONFIG: path, FLEETWIRE_HTTP_PORT: '9444' });
    assert.equal(c.httpPort, 9444);
    assert.equal(c.logLevel, 'warn');
  });

  test('a bad value in the config file names the setting', () => {
    const path = configFile('bad-value.json', JSON.stringify({ http_port: 'abc' }));
    assertRejected({ FLEETWIRE_CONFIG: path }, 'FLEETWIRE_HTTP_PORT');
    const fraction = configFile('fraction.json', JSON.stringify({ http_port: 80.5 }));
    assertRejected({ FLEETWIRE_CONFIG: fraction }, 'FLEETWIRE_HTTP_PORT');
  });

  test('an unknown key in the config file is rejected by name', () => {
    const path = configFile('typo.json', JSON.stringify({ http_prot: 9000 }));
    assert.throws(() => loadConfig({ FLEETWIRE_CONFIG: path }), (e: unknown) => e instanceof ConfigError && e.message.includes('http_prot') && e.message.includes(path));
  });

  test('an unreadable or invalid config file is named', () => {
    const missing = join(dir, 'missing.json');
    assertRejected({ FLEETWIRE_CONFIG: missing }, 'FLEETWIRE_CONFIG', new RegExp(`cannot read ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const broken = configFile('broken.json', '{ "http_port": ');
    assertRejected({ FLEETWIRE_CONFIG: broken }, 'FLEETWIRE_CONFIG', /is not valid JSON/);
    const list = configFile('list.json', '[1, 2]');
    assertRejected({ FLEETWIRE_CONFIG: list }, 'FLEETWIRE_CONFIG', /must hold a JSON object/);
  });

  test('overrides win over the environment without being parsed', () => {
    const c = loadConfig({ FLEETWIRE_HTTP_PORT: '9000' }, { httpPort: 0, logLevel: 'silent' });
    assert.equal(c.httpPort, 0);
    assert.equal(c.logLevel, 'silent');
  });
});

describe('maskUrl', () => {
  test('hides the password of a URL and keeps the rest', () => {
    assert.equal(maskUrl('postgres://fleetwire:s3cret@db:5432/fleet'), 'postgres://fleetwire:***@db:5432/fleet');
    assert.equal(maskUrl('postgres://db/fleet?user=fw&password=s3cret&sslmode=require'), 'postgres://db/fleet?user=fw&password=***&sslmode=require');
    assert.equal(maskUrl('nats://user:s3cret@nats:4222'), 'nats://user:***@nats:4222');
  });

  test('hides a NATS token given as the user name', () => {
    assert.equal(maskUrl('nats://s3cret-token@nats:4222'), 'nats://***@nats:4222');
  });

  test('leaves a URL without credentials as written', () => {
    for (const url of ['postgres://fleetwire@db:5432/fleet', 'sqlite:/var/lib/fleetwire/fleetwire.db', 'nats://nats:4222', '']) assert.equal(maskUrl(url), url);
  });
});

describe('effectiveSettings', () => {
  test('every setting once, secrets masked, with where its value came from', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-config-'));
    try {
      const file = join(dir, 'fleetwire.json');
      writeFileSync(file, JSON.stringify({ retention: '30d', admin_email: 'root@example.com', admin_password: 'file-password-1' }));
      const rows = effectiveSettings({ FLEETWIRE_CONFIG: file, FLEETWIRE_SECRET_KEY: 'ab'.repeat(32), FLEETWIRE_DATABASE_URL: 'postgres://fw:db-password-2@db/fleet' });
      assert.deepEqual(rows.map((r) => r.env), Object.values(settings).map((s) => s.env));
      const row = (env: string) => rows.find((r) => r.env === env)!;
      assert.deepEqual(row('FLEETWIRE_SECRET_KEY'), { env: 'FLEETWIRE_SECRET_KEY', fileKey: 'secret_key', value: '***', source: 'environment' });
      assert.deepEqual(row('FLEETWIRE_ADMIN_PASSWORD'), { env: 'FLEETWIRE_ADMIN_PASSWORD', fileKey: 'admin_password', value: '***', source: 'file' });
      assert.equal(row('FLEETWIRE_DATABASE_URL').value, 'postgres://fw:***@db/fleet');
      assert.deepEqual([row('FLEETWIRE_RETENTION').value, row('FLEETWIRE_RETENTION').source], ['30d', 'file']);
      assert.deepEqual([row('FLEETWIRE_MQTT_OPEN_PORT').value, row('FLEETWIRE_MQTT_OPEN_PORT').source], ['off', 'default']);
      assert.equal(row('FLEETWIRE_NATS_URL').value, '', 'an empty secret or URL shows empty');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad setting throws the ConfigError loadConfig throws', () => {
    assert.throws(() => effectiveSettings({ FLEETWIRE_HTTP_PORT: 'abc' }), (e: unknown) => e instanceof ConfigError && e.setting === 'FLEETWIRE_HTTP_PORT');
  });
});

test('causeText gives one line for an error, and for each error an AggregateError gathers', () => {
  assert.equal(causeText(new Error('boom')), 'boom');
  const both = new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' }), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
  assert.equal(causeText(both), 'connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
  assert.equal(causeText('text'), 'text');
});
