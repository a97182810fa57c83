import { iso } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { Database } from '../db/index.js';
import type { DeadLettersTable } from '../db/schema.js';
import type { Envelope } from '../messaging/envelope.js';

/** A message the writer set aside (migration 5): what it was (the payload as received), and why it could not be stored. */
export type DeadLetter = DeadLettersTable;

/** Longest error text kept (characters): a driver's message may quote a whole statement. */
export const maxDeadLetterError = 2000;

/**
 * Text that any database stores: U+0000 (PostgreSQL refuses it) and lone surrogates become U+FFFD.
 * A dead letter must go in even when its own text is why its message could not.
 */
function storable(text: string): string {
  return text.replace(/\0|\p{Cs}/gu, '\ufffd');
}

function toDeadLetter(row: DeadLettersTable): DeadLetter {
  return { ...row, payload: Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload) };
}

/** The dead-letter table, every read scoped by organization. */
export class DeadLetterRepository {
  constructor(private readonly db: Database) {}

  /** Sets a message aside; false when it was set aside before (redelivered): it is kept once, with its first reason. */
  async add(env: Envelope, error: string, failedAt: number): Promise<boolean> {
    const r = await this.db.kysely
      .insertInto('dead_letters')
      .values({
        id: storable(env.id),
        org_id: storable(env.org),
        channel: storable(env.channel),
        subtopic: storable(env.subtopic),
        publisher: storable(env.publisher),
        protocol: storable(env.protocol),
        content_type: storable(env.contentType),
        payload: Buffer.from(env.payload),
        received_at: iso(env.receivedAt),
        failed_at: iso(failedAt),
        error: storable(error.slice(0, maxDeadLetterError)),
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** A page of an organization's dead letters, oldest message first (ids are UUID v7). */
  async list(orgId: string, offset: number, limit: number): Promise<{ total: number; items: DeadLetter[] }> {
    const base = this.db.kysely.selectFrom('dead_letters').where('org_id', '=', orgId);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('id').offset(offset).limit(limit).execute();
    return { total: Number(n), items: rows.map(toDeadLetter) };
  }

  async get(orgId: string, id: string): Promise<DeadLetter> {
    const row = isUuid(id) ? await this.db.kysely.selectFrom('dead_letters').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst() : undefined;
    if (!row) throw new AppError('dead_letter.not_found');
    return toDeadLetter(row);
  }

  async delete(orgId: string, id: string): Promise<void> {
    const r = isUuid(id) ? await this.db.kysely.deleteFrom('dead_letters').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst() : undefined;
    if (!r || Number(r.numDeletedRows) === 0) throw new AppError('dead_letter.not_found');
  }

  /** Deletes every dead letter of an organization; returns how many there were. */
  async deleteAll(orgId: string): Promise<number> {
    const r = await this.db.kysely.deleteFrom('dead_letters').where('org_id', '=', orgId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
