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

  async all<T>(text: string, params: unknown[]): Promise<T[]> {
    if (this.db.sqlite) return this.prepare(text).all(...params.map(sqliteValue)) as T[];
    return (await this.db.pool!.query(this.pgText(text), params)).rows as T[];
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
