import { STATUS_CODES } from 'node:http';
import { Type, type Static, type TSchema } from 'typebox';
import { AppError } from '../core/errors.js';
import { jsonDepth } from '../core/json.js';
import { isMetadataKey, type ListQuery } from '../db/list.js';

/** RFC 9457 problem details, with our stable `code`. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable error code, e.g. `device.not_found`' }),
    instance: Type.Optional(Type.String()),
    request_id: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', additionalProperties: true },
);

export const problemRef = Type.Ref('Problem');

/**
 * One error response: a Problem as `application/problem+json`, the media type every refusal is
 * sent with (so Fastify serializes it with this schema and the document names the right type).
 */
export function problemResponse(status: number) {
  return { description: `${STATUS_CODES[status] ?? 'Error'}: problem details with a stable \`code\``, content: { 'application/problem+json': { schema: problemRef } } };
}

/** Error responses a route may give, by status, as problem+json. */
export function problems(...statuses: number[]): Record<number, ReturnType<typeof problemResponse>> {
  const out: Record<number, ReturnType<typeof problemResponse>> = {};
  for (const s of statuses) out[s] = problemResponse(s);
  return out;
}

export const Uuid = Type.String({ format: 'uuid' });
export const Timestamp = Type.String({ format: 'date-time' });
export const Name = Type.String({ minLength: 1, maxLength: 256 });
export const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 });
export const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form JSON object (at most 64 KiB)' });

export const OrgParams = Type.Object({ org: Type.String({ description: 'Organization id' }) });
export const OrgIdParams = Type.Object({ org: Type.String(), id: Type.String() });

/** The largest `offset` of a list route: beyond it a database would fail (or scan for ever), so the answer is 400. */
export const maxOffset = 1_000_000_000;
export const Offset = Type.Integer({ minimum: 0, maximum: maxOffset, default: 0 });

export const PageQuery = Type.Object({
  offset: Offset,
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
});
export type PageQuery = Static<typeof PageQuery>;

export const ListQuerySchema = Type.Object({
  offset: Offset,
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
  sort: StringEnum(['name', 'created_at', 'updated_at'], { default: 'created_at' }),
  dir: StringEnum(['asc', 'desc'], { default: 'asc' }),
  name: Type.Optional(Type.String({ maxLength: 256, description: 'Case-insensitive part of the name' })),
  tag: Type.Optional(Type.String({ maxLength: 64, description: 'Exact tag' })),
  metadata: Type.Optional(Type.String({ maxLength: 4096, description: 'JSON object of top-level metadata keys and scalar values that must all match, e.g. `{"floor":2}`' })),
});
export type ListQuerySchema = Static<typeof ListQuerySchema>;

/** Turns the query string of a list route into a ListQuery, checking the metadata filter. */
export function toListQuery(q: ListQuerySchema): ListQuery {
  const out: ListQuery = { offset: q.offset, limit: q.limit, sort: q.sort, dir: q.dir };
  if (q.name) out.name = q.name;
  if (q.tag !== undefined) out.tag = q.tag;
  if (q.metadata !== undefined) {
    let m: unknown;
    try {
      m = JSON.parse(q.metadata);
    } catch {
      throw new AppError('request.invalid', 'metadata must be a JSON object, e.g. {"floor":2}');
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new AppError('request.invalid', 'metadata must be a JSON object, e.g. {"floor":2}');
    for (const [k, v] of Object.entries(m)) {
      if (!isMetadataKey(k)) throw new AppError('request.invalid', `metadata filter key ${JSON.stringify(k)} is not allowed`);
      if (v !== null && typeof v === 'object') throw new AppError('request.invalid', `metadata filter values must be strings, numbers, booleans or null (key ${k})`);
    }
    out.metadata = m as ListQuery['metadata'];
  }
  return out;
}

/** `{total, offset, limit, <key>: [...]}` */
export function pageOf<K extends string>(key: K, item: TSchema) {
  return Type.Object({ total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer(), [key]: Type.Array(item) } as { total: TSchema; offset: TSchema; limit: TSchema } & Record<K, TSchema>);
}

export const maxMetadataBytes = 64 * 1024;
/** Levels of objects and arrays in metadata, the top-level object included. */
export const maxMetadataDepth = 16;

/** Rejects metadata nested deeper than 16 levels or larger than 64 KiB once serialised. */
export function checkMetadata(m: Record<string, unknown> | undefined): void {
  if (m === undefined) return;
  if (jsonDepth(m, maxMetadataDepth) > maxMetadataDepth) throw new AppError('request.invalid', `metadata must be nested at most ${maxMetadataDepth} levels deep`);
  if (Buffer.byteLength(JSON.stringify(m)) > maxMetadataBytes) throw new AppError('request.invalid', `metadata must be at most ${maxMetadataBytes} bytes as JSON`);
}

/** A string that is one of `values` (JSON Schema enum), typed as their union. */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}
