import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config.js';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { createPlatform, type Platform } from '../../src/platform.js';
import { buildApp, type App } from '../../src/http/app.js';
import { MemoryBus } from '../../src/messaging/memory-bus.js';
import type { Database } from '../../src/db/index.js';
import { anotherHandle, openTestDatabase } from './database.js';
import { testPassword, type TestPlatform } from './platform.js';

export type Pair = { access_token: string; refresh_token: string };

/** Logs in by email and password; the token pair. */
export async function login(t: { request: TestPlatform['request'] }, email: string, password = testPassword): Promise<Pair> {
  const res = await t.request('POST', '/auth/token', { body: { email, password } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

export interface PlatformProcess {
  app: App;
  platform: Platform;
  request: TestPlatform['request'];
}

/**
 * Platform processes on one test database (call inside a describe): each `node` has a handle of
 * its own and the bus it is given, all on one manual clock, with FLEETWIRE_SESSION_CHECK_CACHE
 * `cacheMs`. `bus()` makes a bus closed after the tests; one bus for all is a cluster, one each
 * is a cluster whose broadcasts are lost.
 */
export function processesOnOneDatabase(cacheMs: number): { clock: ManualClock; node(bus: MemoryBus): Promise<PlatformProcess>; bus(): MemoryBus } {
  const key = randomBytes(32);
  const clock = new ManualClock(Date.now());
  let cleanup: () => Promise<void>;
  let db: Database;
  const opened: { close(): Promise<void> }[] = [];
  const dirs: string[] = [];

  before(async () => {
    const t = await openTestDatabase();
    db = t.db;
    cleanup = t.cleanup;
  });
  after(async () => {
    for (const o of opened.reverse()) await o.close();
    await cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  return {
    clock,
    async node(bus) {
      const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-data-'));
      dirs.push(dataDir);
      const config = loadConfig({}, { dataDir, logLevel: 'silent', sessionCheckCache: cacheMs });
      const handle = await anotherHandle(db, 2);
      const platform = await createPlatform(config, { db: handle, clock, log: createLogger('silent'), key, bus, writer: false });
      const app = await buildApp(platform);
      await app.ready();
      opened.push({ close: async () => (await app.close(), await platform.close(), await handle.close()) });
      return { app, platform, request: (method, url, opts = {}) => app.inject({ method, url, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {}, ...(opts.body !== undefined ? { payload: opts.body as object } : {}) }) };
    },
    bus() {
      const bus = new MemoryBus();
      opened.push({ close: () => bus.close() });
      return bus;
    },
  };
}
