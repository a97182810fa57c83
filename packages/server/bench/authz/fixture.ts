import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { Database } from '../../src/db/index.js';
import { createPlatform, type Platform } from '../../src/platform.js';
import type { AccessAction } from '../../src/auth/access-store.js';
import type { DeviceCredential } from '../../src/auth/decision.js';

/** One decision to ask for, built ahead so the timed loop allocates nothing of its own. */
export interface AuthzRequest {
  cred: DeviceCredential;
  channelId: string;
  action: AccessAction;
}

export interface AuthzFixture {
  platform: Platform;
  /** One request per device, on its own channel, alternating publish and subscribe; all allowed. */
  requests: AuthzRequest[];
  /** Closes the database and removes the temp folder or schema. */
  close(): Promise<void>;
}

export interface FixtureSize {
  devices: number;
  channels: number;
}

const bulk = 1000; // the services' per-call limit for devices and channels

/**
 * A fleet seeded through the real services: one organization, `channels` channels, `devices`
 * devices spread evenly over them, each connected to its channel for publish and subscribe.
 */
export async function seedFleet(db: Database, size: FixtureSize, cleanup: () => Promise<void>): Promise<AuthzFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-data-'));
  const config = loadConfig({}, { dataDir, logLevel: 'silent' });
  const close = async () => {
    await db.close();
    await cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const platform = await createPlatform(config, { db, clock: systemClock, log: createLogger('silent'), key: randomBytes(32) });
    const owner = await platform.users.create({ email: 'bench@example.com', password: 'bench-password-not-secret' });
    const org = await platform.orgs.create({ userId: owner.id, email: owner.email, platformRole: 'user' }, 'Bench');

    const channels: string[] = [];
    for (let i = 0; i < size.channels; i += bulk) {
      const batch = Array.from({ length: Math.min(bulk, size.channels - i) }, (_, k) => ({ name: `channel-${i + k}` }));
      for (const c of await platform.channels.createMany(org.id, batch)) channels.push(c.id);
    }

    const byChannel = channels.map(() => [] as string[]);
    const requests: AuthzRequest[] = [];
    for (let i = 0; i < size.devices; i += bulk) {
      const batch = Array.from({ length: Math.min(bulk, size.devices - i) }, (_, k) => ({ name: `device-${i + k}` }));
      for (const d of await platform.devices.createMany(org.id, batch)) {
        const n = requests.length;
        const channelId = channels[n % channels.length]!;
        byChannel[n % channels.length]!.push(d.id);
        requests.push({ cred: { kind: 'secret', secret: d.secret, deviceId: d.id }, channelId, action: n % 2 === 0 ? 'publish' : 'subscribe' });
      }
    }
    for (const [c, deviceIds] of byChannel.entries()) {
      for (let i = 0; i < deviceIds.length; i += bulk) {
        await platform.connections.connect(org.id, { device_ids: deviceIds.slice(i, i + bulk), channel_ids: [channels[c]!], types: ['publish', 'subscribe'] });
      }
    }
    return { platform, requests, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** A fleet in a SQLite file in a temp folder. */
export async function sqliteFleet(size: FixtureSize): Promise<AuthzFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-'));
  const db = await Database.open({ url: `sqlite:${join(dir, 'bench.db')}` });
  return seedFleet(db, size, async () => rmSync(dir, { recursive: true, force: true }));
}

/** A fleet in a fresh schema of the PostgreSQL at `url`, dropped on close. */
export async function postgresFleet(url: string, size: FixtureSize, poolSize: number): Promise<AuthzFixture> {
  const schema = `fw_bench_${randomBytes(6).toString('hex')}`;
  const db = await Database.open({ url, schema, poolSize });
  // platform.close() closes the pool, so the schema is dropped over a connection of its own
  return seedFleet(db, size, async () => {
    const admin = await Database.open({ url, poolSize: 1 });
    try {
      await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await admin.close();
    }
  });
}
