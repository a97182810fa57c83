import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig, type Config } from '../../src/core/config.js';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { createPlatform, type Platform, type PlatformDeps } from '../../src/platform.js';
import { buildApp, type App } from '../../src/http/app.js';
import { anotherHandle, openTestDatabase } from './database.js';

export interface TestPlatform {
  platform: Platform;
  app: App;
  clock: ManualClock;
  /** The server key: a second platform on the same database needs it (the CA keys are stored under it). */
  key: Buffer;
  /** Sends a request with `inject`; `token` becomes a Bearer header. */
  request(method: InjectOptions['method'], url: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
  /** Creates a user through the service (faster than HTTP) and logs in. */
  user(email: string, role?: 'admin' | 'user'): Promise<{ id: string; email: string; token: string; password: string }>;
  close(): Promise<void>;
}

export const testPassword = 'correct-horse-battery-staple';

/**
 * A platform on a fresh test database, with a manual clock, a silent logger and cheap password
 * hashes. The clock is the platform's: its services and the MQTT broker built on it (createMqtt)
 * keep time by it, so a test advances it for expiry, keep-alive and rate-limit refills. With `sharing`, on that platform's database instead (a handle of its own, as a second
 * process has); closing it then leaves the database to its owner.
 */
export async function startTestPlatform(overrides: Partial<Config> = {}, deps: Pick<PlatformDeps, 'bus' | 'writer'> = {}, options: { sharing?: TestPlatform } = {}): Promise<TestPlatform> {
  const { db, cleanup } = options.sharing ? await sharedDatabase(options.sharing) : await openTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-data-'));
  const config = loadConfig({}, { dataDir, logLevel: 'silent', passwordHashCost: 10, ...overrides });
  const clock = new ManualClock(Date.now());
  const key = options.sharing?.key ?? randomBytes(32);
  const platform = await createPlatform(config, { db, clock, log: createLogger(config.logLevel), key, ...deps });
  const app = await buildApp(platform);
  await app.ready();
  const request: TestPlatform['request'] = (method, url, opts = {}) =>
    app.inject({
      method,
      url,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { payload: opts.body as InjectOptions['payload'] } : {}),
    });
  return {
    platform,
    app,
    clock,
    key,
    request,
    async user(email, role = 'user') {
      const u = await platform.users.create({ email, password: testPassword, role });
      const res = await request('POST', '/auth/token', { body: { email, password: testPassword } });
      if (res.statusCode !== 200) throw new Error(`login failed: ${res.body}`);
      return { id: u.id, email, token: res.json().access_token as string, password: testPassword };
    },
    async close() {
      await app.close();
      await platform.close();
      await cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function sharedDatabase(owner: TestPlatform) {
  const db = await anotherHandle(owner.platform.db, 4);
  return { db, cleanup: () => db.close() };
}
