import type { Statement } from 'better-sqlite3';
import type { Database } from './database.js';

/**
 * Parameterised SQL written once with `?` placeholders, run on either database: a cached prepared
 * statement on SQLite, `$n` placeholders on PostgreSQL. For the few hot or dynamic queries that
 * the query builder does not fit (message readers).
 */
export class RawQueries {
  private readonly statements = new Map<string, Statement<unknown[]>>();
  private readonly pgTexts = new Map<string, string>();

  constructor(private readonly db: Database) {}

  get kind(): Database['kind'] {
    return this.db.kind;
  }

  async all<T>(text: string, params: unknown[]): Promise<T[]> {
    if (this.db.sqlite) return this.prepare(text).all(...params.map(sqliteValue)) as T[];
    return (await this.db.pool!.query(this.pgText(text), params)).rows as T[];
  }

  async run(text: string, params: unknown[]): Promise<void> {
    if (this.db.sqlite) this.prepare(text).run(...params.map(sqliteValue));
    else await this.db.pool!.query(this.pgText(text), params);
  }

  /** Runs the statements in order in one transaction: all of them or none. */
  async batch(statements: readonly (readonly [text: string, params: unknown[]])[]): Promise<void> {
    if (statements.length === 0) return;
    if (this.db.sqlite) {
      this.db.sqlite.transaction(() => {
        for (const [text, params] of statements) this.prepare(text).run(...params.map(sqliteValue));
      })();
      return;
    }
    await this.db.pgTransaction(async (client) => {
      for (const [text, params] of statements) await client.query(this.pgText(text), params);
    });
  }

  private prepare(text: string): Statement<unknown[]> {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.sqlite!.prepare(text);
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(text, st);
    }
    return st;
  }

  private pgText(text: string): string {
    let t = this.pgTexts.get(text);
    if (t === undefined) {
      let i = 0;
      t = text.replace(/\?/g, () => `$${++i}`);
      if (this.pgTexts.size > 500) this.pgTexts.clear();
      this.pgTexts.set(text, t);
    }
    return t;
  }
}

/** better-sqlite3 binds no booleans. */
function sqliteValue(v: unknown): unknown {
  return typeof v === 'boolean' ? (v ? 1 : 0) : v;
}
