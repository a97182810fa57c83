import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type * as KyselyModuleNs from 'kysely';
import type { DatabaseConnection, Driver, Kysely } from 'kysely';
import type pg from 'pg';
import type { Tables } from './schema.js';

/** node-postgres, loaded when a PostgreSQL database is opened: a SQLite process (and the writer thread) does without its ~7 MB. */
let pgModule: typeof pg | undefined;
async function loadPg(): Promise<typeof pg> {
  pgModule ??= (await import('pg')).default;
  return pgModule;
}

export type DatabaseKind = 'sqlite' | 'postgres';

/** SQLite function registered on every handle: Unicode lower case (SQLite's own `lower` is ASCII only). */
export const sqliteLowerFunction = 'fleetwire_lower';

export interface DatabaseOptions {
  /** `sqlite:<path>`, `sqlite::memory:` or `postgres://…`. */
  url: string;
  poolSize?: number;
  /** PostgreSQL schema to use (created if missing); tests use one schema each. */
  schema?: string;
  /** Load the query builder (default true). The writer thread, which uses prepared statements only, does without Kysely's ~6 MB. */
  queryBuilder?: boolean;
}

type KyselyModule = typeof KyselyModuleNs;

/**
 * The query builder over a handle. Kysely's SQLite driver is given transactions that take the write
 * lock when they begin: the message writer's worker thread has a connection of its own, and a
 * deferred transaction that read before it wrote would fail with SQLITE_BUSY_SNAPSHOT whenever the
 * writer committed in between, where an immediate one waits for the lock (busy_timeout) and then
 * sees the newest data.
 */
function queryBuilder(k: KyselyModule, sqlite: SqliteDatabase.Database | undefined, pool: pg.Pool | undefined): Kysely<Tables> {
  if (!sqlite) return new k.Kysely<Tables>({ dialect: new k.PostgresDialect({ pool: pool! }) });
  const database = sqlite;
  class ImmediateSqliteDriver extends k.SqliteDriver {
    override async beginTransaction(connection: DatabaseConnection): Promise<void> {
      await connection.executeQuery(k.CompiledQuery.raw('begin immediate'));
    }
  }
  class ImmediateSqliteDialect extends k.SqliteDialect {
    override createDriver(): Driver {
      return new ImmediateSqliteDriver({ database: cached });
    }
  }
  const cached = statementCache(database);
  return new k.Kysely<Tables>({ dialect: new ImmediateSqliteDialect({ database: cached }) });
}

/** Statements kept prepared per SQLite handle: the builder's SQL repeats, its IN lists of other lengths aside. */
const statementCacheSize = 500;

/**
 * The handle as Kysely's SQLite driver takes it, with its statements prepared once: better-sqlite3
 * prepares anew at every `prepare`, which was a tenth of an enrolment's time (bench/enrol). A
 * statement still iterating (a stream) is never handed out twice: another is prepared for it.
 */
function statementCache(database: SqliteDatabase.Database): { prepare(sql: string): SqliteDatabase.Statement; close(): void } {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    prepare(sql) {
      const kept = statements.get(sql);
      if (kept && !kept.busy) {
        // most recently used last: the first is the one to let go when full
        statements.delete(sql);
        statements.set(sql, kept);
        return kept;
      }
      const made = database.prepare(sql);
      if (!kept) {
        if (statements.size >= statementCacheSize) statements.delete(statements.keys().next().value!);
        statements.set(sql, made);
      }
      return made;
    },
    close: () => database.close(),
  };
}

/** Page size of a new SQLite database: 16 KiB pages stored SenML records about a quarter faster than the default 4 KiB (bench/writer). */
const sqlitePageSize = 16384;

interface MigrationRow {
  version: number;
  name: string;
  checksum: string;
  applied_at: string;
}

/**
 * One handle over either database. Management code uses `kysely`; hot paths may use the raw
 * driver (`sqlite` or `pool`) with prepared statements.
 */
export class Database {
  private readonly builder: Kysely<Tables> | undefined;

  private constructor(
    readonly kind: DatabaseKind,
    readonly sqlite: SqliteDatabase.Database | undefined,
    readonly pool: pg.Pool | undefined,
    readonly schema: string | undefined,
    kysely: KyselyModule | undefined,
  ) {
    this.builder = kysely && queryBuilder(kysely, sqlite, pool);
  }

  /** The query builder (Kysely); not on a handle opened with `queryBuilder: false`. */
  get kysely(): Kysely<Tables> {
    if (!this.builder) throw new Error('this database handle was opened without the query builder');
    return this.builder;
  }

  static async open(options: DatabaseOptions): Promise<Database> {
    if (options.url.startsWith('sqlite:')) {
      const path = options.url.slice('sqlite:'.length);
      if (path !== ':memory:') ownerOnly(path);
      const handle = new SqliteDatabase(path);
      // takes effect on a new, empty database only (an existing one keeps its page size until VACUUM)
      handle.pragma(`page_size = ${sqlitePageSize}`);
      handle.pragma('journal_mode = WAL');
      handle.pragma('synchronous = NORMAL');
      handle.pragma('foreign_keys = ON');
      handle.pragma('busy_timeout = 5000');
      handle.function(sqliteLowerFunction, { deterministic: true }, (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v));
      return new Database('sqlite', handle, undefined, undefined, options.queryBuilder === false ? undefined : await import('kysely'));
    }
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`);
    const pg = await loadPg();
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      types: { getTypeParser: pgTypeParser } as pg.CustomTypesConfig,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    if (schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    else await pool.query('SELECT 1');
    return new Database('postgres', undefined, pool, schema, options.queryBuilder === false ? undefined : await import('kysely'));
  }

  /** Runs a script of one or more statements outside any transaction. */
  async exec(script: string): Promise<void> {
    if (this.sqlite) this.sqlite.exec(script);
    else await this.pool!.query(script);
  }

  /** Applies one migration script and records it, atomically. */
  async applyMigration(script: string, row: MigrationRow): Promise<void> {
    if (this.sqlite) {
      const db = this.sqlite;
      db.transaction(() => {
        db.exec(script);
        db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)').run(row.version, row.name, row.checksum, row.applied_at);
      }).immediate();
      return;
    }
    await this.pgTransaction(async (client) => {
      await client.query(script);
      await client.query('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [row.version, row.name, row.checksum, row.applied_at]);
    });
  }

  /** Runs `fn` in one PostgreSQL transaction on one pooled connection: committed when it resolves, rolled back when it throws. */
  async pgTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool!.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  /** Serialises migrations across processes sharing one PostgreSQL database (advisory lock). */
  async withMigrationLock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.sqlite) return fn();
    // The lock holder is a connection of its own, not one from the pool: `fn` queries through the
    // pool, which may have a single connection (`fleetwire migrate`, FLEETWIRE_DATABASE_POOL_SIZE=1).
    const client = new (await loadPg()).Client(this.pool!.options);
    client.on('error', () => {});
    await client.connect();
    const key = 0x666c7477; // 'fltw'
    try {
      await client.query('SELECT pg_advisory_lock($1)', [key]);
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {});
      await client.end().catch(() => {});
    }
  }

  /** True when the database answers a trivial query. */
  async ping(): Promise<boolean> {
    try {
      if (this.sqlite) this.sqlite.prepare('SELECT 1').get();
      else await this.pool!.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.builder) await this.builder.destroy(); // ends the pool or closes the SQLite handle
    else if (this.sqlite) this.sqlite.close();
    else await this.pool!.end();
  }

  /** Drops the schema given at open (tests only). */
  async dropSchema(): Promise<void> {
    if (this.pool && this.schema) await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }
}

/**
 * The database holds password hashes and device secret hashes: its folder is created 0700 and the
 * file 0600 before SQLite opens it, so that the -wal and -shm files SQLite creates take the same
 * mode (SQLite gives them the database file's). An existing file readable by others is narrowed.
 */
function ownerOnly(path: string): void {
  mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    } catch {
      // not ours to change (another owner): SQLite opens it as it is
    }
  }
}

/** Timestamps come back as ISO strings and 64-bit integers as numbers, as they do from SQLite. */
function pgTypeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === 1184 || oid === 1114) return (v) => new Date(oid === 1114 ? `${v}Z` : v).toISOString();
  if (oid === 20) return (v) => Number(v);
  return pgModule!.types.getTypeParser(oid, format as 'text');
}

/** Parses a JSON column, which SQLite returns as text and PostgreSQL as a value. */
export function jsonColumn<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function sqliteUrlFor(dataDir: string): string {
  return `sqlite:${resolve(dataDir, 'fleetwire.db')}`;
}
