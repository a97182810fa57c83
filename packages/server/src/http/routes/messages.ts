import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LevelWithSilent } from 'pino';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { AppError, isAppError } from '../../core/errors.js';
import { parseDuration } from '../../core/config.js';
import type { Platform } from '../../platform.js';
import { Offset, StringEnum, problems } from '../schemas.js';
import { InvalidCursorError, type Aggregation, type MessageFilter, type MessageRecord, type Page } from '../../storage/readers.js';
import { certificateOf, clientFromAuthorization } from '../credentials.js';
import type { Client, Granted } from '../../messaging/service.js';
import { normaliseSubtopic, type ChannelMessages } from '../../core/address.js';
import { channelAddressOf } from '../address.js';

const ChannelParams = Type.Object({ id: Type.String({ description: 'Channel id' }) });
const ChannelSubtopicParams = Type.Object({ id: Type.String({ description: 'Channel id' }), '*': Type.String({ title: 'subtopic', description: 'Subtopic: one or more path segments, `lab` or `lab/bench-2` (a slash sent encoded, `lab%2Fbench-2`, as client generators send it, is the same subtopic)' }) });

const ReadQuery = Type.Object({
  type: StringEnum(['senml', 'json', 'binary'], { default: 'senml', description: 'senml: one row per SenML record and per numeric field of JSON messages; json: JSON documents; binary: opaque payloads (base64 in `format=json`, the bytes themselves in `format=raw`)' }),
  subtopic: Type.Optional(Type.String({ maxLength: 1024 })),
  publisher: Type.Optional(Type.String({ maxLength: 256 })),
  name: Type.Optional(Type.String({ maxLength: 1024 })),
  v: Type.Optional(Type.Number()),
  comparator: Type.Optional(StringEnum(['eq', 'lt', 'le', 'gt', 'ge'], { description: 'How `v` compares (default eq)' })),
  vb: Type.Optional(Type.Boolean()),
  vs: Type.Optional(Type.String({ maxLength: 65536 })),
  vd: Type.Optional(Type.String({ maxLength: 65536 })),
  from: Type.Optional(Type.String({ description: 'Inclusive start: Unix seconds (fractions allowed) or RFC 3339' })),
  to: Type.Optional(Type.String({ description: 'Exclusive end: Unix seconds (fractions allowed) or RFC 3339' })),
  offset: Offset,
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 1024, description: 'The `next` of the previous page: the page after it, however deep (instead of `offset`, which skips rows one by one)' })),
  total: Type.Boolean({ default: false, description: 'Also count every matching row (`total`): a second query whose cost grows with the history; aggregations always have it' }),
  order: StringEnum(['time', 'name', 'value', 'publisher', 'subtopic'], { default: 'time' }),
  dir: StringEnum(['asc', 'desc'], { default: 'desc', description: 'Newest first by default' }),
  aggregation: Type.Optional(StringEnum(['min', 'max', 'avg', 'sum', 'count'])),
  interval: Type.Optional(Type.String({ description: 'Aggregation interval: 30s, 1m, 1h, 1d …', pattern: '^[0-9]+(s|m|h|d)$' })),
  format: StringEnum(['json', 'csv', 'raw'], { default: 'json', description: 'json: a page of messages; csv: every SenML record; raw (type=binary only): the bytes of the first opaque payload of the page, as they were published' }),
});
type ReadQuery = Static<typeof ReadQuery>;

const Record_ = Type.Object({
  channel: Type.String(), subtopic: Type.String(), publisher: Type.String(), protocol: Type.String(), name: Type.String(),
  unit: Type.Optional(Type.String()), time: Type.Number(), update_time: Type.Optional(Type.Number()),
  value: Type.Optional(Type.Number()), string_value: Type.Optional(Type.String()), bool_value: Type.Optional(Type.Boolean()), data_value: Type.Optional(Type.String()), sum: Type.Optional(Type.Number()),
});

const source = { channel: Type.String(), subtopic: Type.String(), publisher: Type.String(), protocol: Type.String() };
const StoredDocument_ = Type.Object({ id: Type.String(), ...source, time: Type.Number(), document: Type.Record(Type.String(), Type.Unknown()) });
const StoredPayload_ = Type.Object({
  id: Type.String(), ...source, content_type: Type.String(), time: Type.Number(), size: Type.Integer(), truncated: Type.Boolean(),
  payload: Type.String({ description: 'The payload (up to FLEETWIRE_OPAQUE_MAX_STORED bytes), base64' }),
});
const Aggregated_ = Type.Object({ name: Type.String(), time: Type.Number({ description: 'Start of the interval, Unix seconds' }), value: Type.Number(), count: Type.Integer({ description: 'Records in the interval' }) });
/** What a page holds: SenML records (the default), JSON documents (type=json), opaque payloads (type=binary), or aggregated values. */
const Messages = Type.Union([Type.Array(Record_, { title: 'records' }), Type.Array(StoredDocument_, { title: 'documents' }), Type.Array(StoredPayload_, { title: 'payloads' }), Type.Array(Aggregated_, { title: 'aggregated values' })]);

/** Unix seconds (fractions allowed) or RFC 3339. */
export function parseTime(text: string, field: string): number {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) throw new AppError('message.invalid_query', `${field} must be Unix seconds or an RFC 3339 time, got ${JSON.stringify(text)}`);
  return ms / 1000;
}

function filterOf(channel: string, q: ReadQuery): MessageFilter {
  const f: MessageFilter = { channel };
  for (const k of ['subtopic', 'publisher', 'name', 'v', 'vb', 'vs', 'vd', 'comparator'] as const) if (q[k] !== undefined) (f as unknown as Record<string, unknown>)[k] = q[k];
  if (q.from !== undefined) f.from = parseTime(q.from, 'from');
  if (q.to !== undefined) f.to = parseTime(q.to, 'to');
  if (f.comparator && f.v === undefined) throw new AppError('message.invalid_query', 'comparator needs v');
  if (f.subtopic !== undefined) {
    const s = normaliseSubtopic(f.subtopic);
    if (!s.ok) throw new AppError('message.invalid_subtopic', s.error);
    f.subtopic = s.subtopic;
  }
  return f;
}

const csvColumns = ['channel', 'subtopic', 'publisher', 'protocol', 'name', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'] as const;

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

async function* csvLines(records: AsyncIterable<MessageRecord>): AsyncGenerator<string> {
  yield csvColumns.join(',') + '\r\n';
  let chunk = '';
  for await (const r of records) {
    chunk += csvColumns.map((c) => csvCell(r[c])).join(',') + '\r\n';
    if (chunk.length > 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** A stored content type as a response header: one a publisher sent that is no valid header value is not repeated. */
function headerContentType(contentType: string): string {
  return /^[\x21-\x7e][\x20-\x7e]*$/.test(contentType) ? contentType : 'application/octet-stream';
}

/** Largest CSV export, in rows. */
export const maxCsvRows = 10_000_000;

/** The log level of the publish routes: at most warn, so that info does not log every message; debug and trace as configured. */
export function publishLogLevel(level: string): LevelWithSilent {
  return (level === 'info' ? 'warn' : level) as LevelWithSilent;
}

/** HTTP adapter: publish with device credentials or a user token, and the readers API. */
export function messageRoutes(fastify: FastifyInstance, platform: Platform): void {
  const { messaging, readers, messagingMetrics: metrics } = platform;

  const clientOf = (req: FastifyRequest): Promise<Client> => clientFromAuthorization(req.headers.authorization, platform.auth, certificateOf(req, platform.trust.current()));

  // Publishing takes any body as bytes: its own scope, so the management API keeps its JSON parser.
  void fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: messaging.maxPayloadBytes }, (_req, body, done) => done(null, body));
    const app = scope.withTypeProvider<TypeBoxTypeProvider>();
    // Authentication and authorization come first, before the body is read (onRequest runs ahead
    // of the body parser): a caller with a wrong secret gets 401, never 400 or 413, and an
    // unauthenticated caller cannot make the server read or parse its payload.
    const authorized = new WeakMap<FastifyRequest, { client: Client; address: ChannelMessages; granted: Granted }>();
    const authorizePublish = async (req: FastifyRequest) => {
      try {
        const address = channelAddressOf(req);
        const client = await clientOf(req);
        // the answer goes with the request to the handler: the service does not authorise it again
        authorized.set(req, { client, address, granted: await messaging.authorize(client, address.channel, 'publish') });
      } catch (e) {
        metrics.rejected.inc({ protocol: 'http', code: isAppError(e) ? e.code : 'internal' });
        throw e;
      }
    };
    const publish = async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const { client, address, granted } = authorized.get(req)!;
        const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
        const env = await messaging.publish({
          client,
          channel: address.channel,
          subtopic: address.subtopic,
          contentType: req.headers['content-type'],
          payload: body,
          protocol: 'http',
          granted,
        });
        metrics.received.inc({ protocol: 'http' });
        return reply.code(202).header('x-message-id', env.id).send();
      } catch (e) {
        metrics.rejected.inc({ protocol: 'http', code: isAppError(e) ? e.code : 'internal' });
        throw e;
      }
    };
    const schema = (params: typeof ChannelParams | typeof ChannelSubtopicParams) => ({
      operationId: params === ChannelParams ? 'publishMessage' : 'publishMessageOnSubtopic',
      tags: ['messages'],
      summary: 'Publish a message',
      description:
        'Credentials: `Authorization: Device <secret>` (or `Thing <secret>`, or Basic `<device id>:<secret>`) of a device connected to the channel for publish, or `Bearer <token>` of a user who may publish (operator or higher). Content types: application/senml+json, application/senml+cbor, application/json; anything else is stored as opaque bytes. Without a Content-Type header the payload is taken as the channel\'s `content_type`.',
      params,
      // documented only (src/http/openapi.ts): the body is read as bytes, whatever its type
      consumes: ['application/senml+json', 'application/senml+cbor', 'application/json', 'application/octet-stream'],
      response: { 202: Type.Null({ description: 'Accepted; the message id is in X-Message-Id' }), ...problems(400, 401, 403, 404, 413, 415, 503) },
    });
    // Telemetry is not access-logged at info level: two lines per message would swamp the log and
    // cost publishers a sixth of their throughput (bench/http-publish, sqlite-info). Publishes are
    // counted in the metrics, failures still log at warn and above, and debug logs every one.
    const logLevel = publishLogLevel(platform.config.logLevel);
    app.post('/channels/:id/messages', { config: { auth: 'device' }, logLevel, onRequest: authorizePublish, schema: schema(ChannelParams) }, publish);
    app.post('/channels/:id/messages/*', { config: { auth: 'device' }, logLevel, onRequest: authorizePublish, schema: schema(ChannelSubtopicParams) }, publish);
  });

  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/channels/:id/messages', {
    config: { auth: 'device' },
    schema: {
      operationId: 'readMessages',
      tags: ['messages'],
      summary: "Read a channel's stored messages",
      description: 'Users with a viewer role or higher in the channel\'s organization, or devices connected to the channel for subscribe. Newest first. With `aggregation` and `interval`, values are aggregated per name and interval. `format=csv` streams every matching record (offset/limit ignored). `type=binary&format=raw` answers with the bytes of the first opaque payload of the page (`offset`, `dir` and the filters apply; `limit` is ignored) and its content type, the message id in X-Message-Id and whether it was cut in X-Payload-Truncated; 204 when none matches.',
      params: ChannelParams,
      querystring: ReadQuery,
      response: {
        200: Type.Object({
          offset: Type.Integer(),
          limit: Type.Integer(),
          more: Type.Boolean({ description: 'Whether rows follow this page' }),
          next: Type.Optional(Type.String({ description: 'Cursor of the next page (pass it as `cursor`), when rows follow and the page is in time order' })),
          total: Type.Optional(Type.Integer({ description: 'Every matching row: with `total=true`, and for aggregations' })),
          messages: Messages,
        }),
        204: Type.Null({ description: 'format=raw: no opaque payload matches' }),
        ...problems(400, 401, 403, 404),
      },
    },
  }, async (req, reply) => {
    await messaging.authorize(await clientOf(req), req.params.id, 'subscribe');
    const q = req.query;
    const f = filterOf(req.params.id, q);
    if (q.cursor !== undefined && q.offset > 0) throw new AppError('message.invalid_query', 'cursor and offset do not go together: a cursor says where the page starts');
    const page = { offset: q.offset, limit: q.limit, dir: q.dir, total: q.total, ...(q.cursor !== undefined ? { after: q.cursor } : {}) };
    if (q.format === 'raw') {
      if (q.type !== 'binary') throw new AppError('message.invalid_query', 'format=raw is for opaque payloads (type=binary)');
      const { items } = await readers.payloads(f, { offset: q.offset, limit: 1, dir: q.dir });
      const p = items[0];
      if (p === undefined) return reply.code(204).send(null);
      // the bytes are the publisher's: never run by a browser that opens them (no sniffing, a sandbox, a download)
      reply
        .type(headerContentType(p.content_type))
        .header('x-message-id', p.id)
        .header('x-payload-truncated', String(p.truncated))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('content-disposition', `attachment; filename="message-${p.id}"`);
      return reply.send(p.payload as never);
    }
    if (q.format === 'csv') {
      if (q.type !== 'senml' || q.aggregation) throw new AppError('message.invalid_query', 'CSV export is for SenML records without aggregation');
      reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="channel-${req.params.id}.csv"`);
      return reply.send(Readable.from(csvLines(readers.allRecords(f, q.dir, maxCsvRows))) as never);
    }
    if (q.aggregation || q.interval) {
      if (!q.aggregation || !q.interval) throw new AppError('message.invalid_query', 'aggregation and interval go together');
      if (q.type !== 'senml') throw new AppError('message.invalid_query', 'aggregation is for SenML records');
      const interval = parseDuration(q.interval)! / 1000;
      // 0s would group by nothing (PostgreSQL: division by zero)
      if (!(interval >= 1)) throw new AppError('message.invalid_query', 'interval is at least 1s, e.g. 30s, 1m, 1h');
      if (q.cursor !== undefined) throw new AppError('message.invalid_query', 'aggregations page with offset');
      const { total, items } = await readers.aggregate(f, q.aggregation as Aggregation, interval, page);
      return { total, offset: q.offset, limit: q.limit, more: q.offset + items.length < total, messages: items };
    }
    const answer = <T>(p: Page<T>, messages: Static<typeof Messages>) => ({ offset: q.offset, limit: q.limit, more: p.more, ...(p.next ? { next: p.next } : {}), ...(p.total !== undefined ? { total: p.total } : {}), messages });
    try {
      if (q.type === 'json') {
        const p = await readers.documents(f, page);
        return answer(p, p.items);
      }
      if (q.type === 'binary') {
        const p = await readers.payloads(f, page);
        return answer(p, p.items.map((m) => ({ ...m, payload: m.payload.toString('base64') })));
      }
      const p = await readers.records(f, page, q.order);
      return answer(p, p.items);
    } catch (e) {
      if (e instanceof InvalidCursorError) throw new AppError('message.invalid_query', e.message);
      throw e;
    }
  });

  app.get('/channels/:id/messages/latest', {
    config: { auth: 'device' },
    schema: {
      operationId: 'readLatestMessages',
      tags: ['messages'],
      summary: 'The newest record of each name on a channel',
      description: 'Users with a viewer role or higher in the channel\'s organization, or devices connected to the channel for subscribe. One record per SenML name (and per numeric field of JSON messages), the newest.',
      params: ChannelParams,
      querystring: Type.Object({ subtopic: Type.Optional(Type.String({ maxLength: 1024 })), publisher: Type.Optional(Type.String({ maxLength: 256 })) }),
      response: { 200: Type.Object({ messages: Type.Array(Record_) }), ...problems(401, 403, 404) },
    },
  }, async (req) => {
    await messaging.authorize(await clientOf(req), req.params.id, 'subscribe');
    const f: MessageFilter = { channel: req.params.id };
    if (req.query.subtopic !== undefined) f.subtopic = req.query.subtopic;
    if (req.query.publisher !== undefined) f.publisher = req.query.publisher;
    return { messages: await readers.latest(f) };
  });
}
