import { createHash } from 'node:crypto';
import type { Database } from './database.js';

/**
 * Versioned migrations, one SQL text per dialect. An applied migration is recorded with the
 * checksum of the text that ran; if a file changes afterwards, migrate() refuses to go on.
 * Never edit an applied migration: add a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const ts = { sqlite: 'TEXT NOT NULL', postgres: 'TIMESTAMPTZ NOT NULL' };
const tsNull = { sqlite: 'TEXT', postgres: 'TIMESTAMPTZ' };
const json = { sqlite: "TEXT NOT NULL DEFAULT '{}'", postgres: "JSONB NOT NULL DEFAULT '{}'" };
const jsonArr = { sqlite: "TEXT NOT NULL DEFAULT '[]'", postgres: "JSONB NOT NULL DEFAULT '[]'" };

function both(render: (t: { ts: string; tsNull: string; json: string; jsonArr: string }) => string): { sqlite: string; postgres: string } {
  return {
    sqlite: render({ ts: ts.sqlite, tsNull: tsNull.sqlite, json: json.sqlite, jsonArr: jsonArr.sqlite }),
    postgres: render({ ts: ts.postgres, tsNull: tsNull.postgres, json: json.postgres, jsonArr: jsonArr.postgres }),
  };
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'foundation',
    ...both(
      (t) => `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE TABLE organizations (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE TABLE memberships (
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
  created_at ${t.ts},
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  family_id TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires_at ${t.ts},
  revoked_at ${t.tsNull},
  created_at ${t.ts}
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE access_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  actions ${t.jsonArr},
  expires_at ${t.ts},
  revoked_at ${t.tsNull},
  last_used_at ${t.tsNull},
  created_at ${t.ts}
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  tags ${t.jsonArr},
  metadata ${t.json},
  status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
  secret_hash TEXT NOT NULL UNIQUE,
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX devices_org_created ON devices (org_id, created_at);
CREATE INDEX devices_org_name ON devices (org_id, name);
CREATE TABLE channels (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  tags ${t.jsonArr},
  metadata ${t.json},
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX channels_org_created ON channels (org_id, created_at);
CREATE INDEX channels_org_name ON channels (org_id, name);
CREATE TABLE groups (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  tags ${t.jsonArr},
  metadata ${t.json},
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX groups_org_created ON groups (org_id, created_at);
CREATE TABLE group_devices (
  group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  created_at ${t.ts},
  PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_devices_device ON group_devices (device_id);
CREATE TABLE connections (
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  type TEXT NOT NULL CHECK (type IN ('publish', 'subscribe')),
  created_at ${t.ts},
  PRIMARY KEY (device_id, channel_id, type)
);
CREATE INDEX connections_channel ON connections (channel_id, device_id);
`,
    ),
  },
];

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface MigrationReport {
  applied: { version: number; name: string }[];
  current: number;
}

/**
 * Applies pending migrations in order, each in its own transaction. Refuses (throws) when an
 * applied migration's checksum differs from the code's, or when the database is newer than the code.
 */
export async function migrate(db: Database, list: Migration[] = migrations): Promise<MigrationReport> {
  const dialect = db.kind;
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  return db.withMigrationLock(async () => {
    const rows = await db.kysely.selectFrom('schema_migrations').selectAll().orderBy('version').execute();
    const known = new Map(list.map((m) => [m.version, m]));
    for (const row of rows) {
      const m = known.get(Number(row.version));
      if (!m) throw new MigrationError(`database is at migration ${row.version} (${row.name}), which this version of Fleetwire does not know; upgrade Fleetwire`);
      const sum = checksum(m[dialect]);
      if (sum !== row.checksum) throw new MigrationError(`migration ${m.version} (${m.name}) was changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ${sum.slice(0, 12)} in the code); refusing to run`);
    }
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: MigrationReport['applied'] = [];
    for (const m of [...list].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      const script = m[dialect];
      await db.applyMigration(script, { version: m.version, name: m.name, checksum: checksum(script), applied_at: new Date().toISOString() });
      applied.push({ version: m.version, name: m.name });
    }
    const current = Math.max(0, ...list.map((m) => m.version));
    return { applied, current };
  });
}
