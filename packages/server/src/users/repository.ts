import type { Database } from '../db/index.js';
import type { UsersTable } from '../db/schema.js';

export type PlatformRole = 'admin' | 'user';

export interface User {
  id: string;
  email: string;
  name: string;
  role: PlatformRole;
  created_at: string;
  updated_at: string;
}

export interface UserWithHash extends User {
  password_hash: string;
}

function toUser(row: UsersTable): User {
  return { id: row.id, email: row.email, name: row.name, role: row.role, created_at: row.created_at, updated_at: row.updated_at };
}

export class UserRepository {
  constructor(private readonly db: Database) {}

  /** Returns false when the email is taken. */
  async insert(row: UsersTable): Promise<boolean> {
    const res = await this.db.kysely.insertInto('users').values(row).onConflict((oc) => oc.column('email').doNothing()).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async findById(id: string): Promise<User | undefined> {
    const row = await this.db.kysely.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  async findByEmailWithHash(email: string): Promise<UserWithHash | undefined> {
    const row = await this.db.kysely.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    return row && { ...toUser(row), password_hash: row.password_hash };
  }

  async findHashById(id: string): Promise<string | undefined> {
    const row = await this.db.kysely.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirst();
    return row?.password_hash;
  }

  async list(offset: number, limit: number, email?: string): Promise<{ total: number; items: User[] }> {
    let q = this.db.kysely.selectFrom('users');
    if (email) q = q.where('email', '=', email);
    const [{ n }] = (await q.select((eb) => eb.fn.countAll<number>().as('n')).execute()) as [{ n: number }];
    const rows = await q.selectAll().orderBy('created_at').orderBy('id').offset(offset).limit(limit).execute();
    return { total: Number(n), items: rows.map(toUser) };
  }

  async update(id: string, patch: Partial<Pick<UsersTable, 'name' | 'role' | 'password_hash'>>, now: string): Promise<User | undefined> {
    const res = await this.db.kysely.updateTable('users').set({ ...patch, updated_at: now }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return undefined;
    return this.findById(id);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  async count(): Promise<number> {
    const row = await this.db.kysely.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
