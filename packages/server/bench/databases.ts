// Fresh, migrated databases for benches: a SQLite file in a temp folder, or a PostgreSQL schema of
// its own. PostgreSQL comes from FLEETWIRE_BENCH_POSTGRES_URL, else FLEETWIRE_TEST_POSTGRES_URL, else
// postgres://postgres@127.0.0.1:5432/test; when nothing answers there the PostgreSQL cases are skipped.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, migrate } from '../src/db/index.js';

export const postgresUrl = process.env.FLEETWIRE_BENCH_POSTGRES_URL ?? process.env.FLEETWIRE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type BenchDatabaseKind = 'sqlite' | 'postgres';

export interface BenchDatabase {
  db: Database;
  /** Closes the database and removes the temp folder or drops the schema. */
  close(): Promise<void>;
}

/** The PostgreSQL address without its password, for messages. */
export function postgresWhere(): string {
  const u = new URL(postgresUrl);
  u.password = '';
  return u.host;
}

/** Undefined when PostgreSQL answers at postgresUrl; otherwise why its cases are skipped. */
export async function postgresSkipReason(): Promise<string | undefined> {
  const u = new URL(postgresUrl);
  const open = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 5432) });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
  if (!open) return `nothing listens at ${postgresWhere()}. Start PostgreSQL or set FLEETWIRE_BENCH_POSTGRES_URL to measure it.`;
  try {
    const db = await Database.open({ url: postgresUrl, poolSize: 1 });
    await db.close();
  } catch (e) {
    return `${postgresWhere()} refused the bench (${(e as Error).message}).`;
  }
  return undefined;
}

/** A fresh database with every migration applied. */
export async function openBenchDatabase(kind: BenchDatabaseKind, poolSize = 4): Promise<BenchDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-'));
    const db = await Database.open({ url: `sqlite:${join(dir, 'bench.db')}` });
    await migrate(db);
    return {
      db,
      close: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `fw_bench_${randomBytes(6).toString('hex')}`;
  const db = await Database.open({ url: postgresUrl, schema, poolSize });
  const close = async () => {
    await db.dropSchema();
    await db.close();
  };
  try {
    await migrate(db);
  } catch (e) {
    await close();
    throw e;
  }
  return { db, close };
}

/** What the database is, for the header of a bench's output. */
export async function describeDatabase(db: Database): Promise<string> {
  if (db.sqlite) {
    const v = db.sqlite.prepare('SELECT sqlite_version() AS v').get() as { v: string };
    const journal = db.sqlite.pragma('journal_mode', { simple: true }) as string;
    const sync = ['off', 'normal', 'full', 'extra'][db.sqlite.pragma('synchronous', { simple: true }) as number] ?? '?';
    return `SQLite ${v.v}, file in a temp folder (journal ${journal}, synchronous ${sync})`;
  }
  const show = async (name: string) => ((await db.pool!.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!);
  return `PostgreSQL ${await show('server_version')} at ${postgresWhere()} (synchronous_commit ${await show('synchronous_commit')}, shared_buffers ${await show('shared_buffers')})`;
}
