// `fleetwire publish`, `subscribe` and `messages query|aggregate|export`.
import { createWriteStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Refusal, UsageError } from '../errors.js';
import { printJson, printTable, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, openSession, problemOf } from '../session.js';
import { follow } from '../follow.js';

const contentTypes = { senml: 'application/senml+json', json: 'application/json', bytes: 'application/octet-stream' } as const;

/** A subtopic as path segments, each encoded: `lab/bench` stays two segments. */
function subtopicPath(subtopic: string | undefined): string {
  return subtopic ? '/' + subtopic.split('/').map(encodeURIComponent).join('/') : '';
}

function readPayload(payload: string | undefined, file: string | undefined): Buffer {
  if (payload !== undefined && file !== undefined) throw new UsageError('the message comes from the argument or --file, not both');
  if (payload !== undefined) return Buffer.from(payload, 'utf8');
  if (file === undefined && process.stdin.isTTY) throw new UsageError('no message: give it as an argument, with --file, or on standard input');
  try {
    return readFileSync(file === undefined || file === '-' ? 0 : file);
  } catch (e) {
    throw new UsageError(`cannot read ${file ?? 'standard input'}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function publish(env: NodeJS.ProcessEnv, [channel, payload]: [string, string | undefined], options: { subtopic?: string; file?: string; format: keyof typeof contentTypes }): Promise<void> {
  const body = readPayload(payload, options.file);
  const s = await openSession(env);
  // the bytes go as they are, under their content type: the platform checks them (SenML rules, JSON)
  const raw = { body: body as never, bodySerializer: () => body, headers: { 'content-type': contentTypes[options.format] } };
  const { response: res, error } = options.subtopic
    ? await s.api.POST('/channels/{id}/messages/{subtopic}', { params: { path: { id: channel, subtopic: options.subtopic } }, ...raw })
    : await s.api.POST('/channels/{id}/messages', { params: { path: { id: channel } }, ...raw });
  if (!res.ok) throw new Refusal(problemOf(res, error));
  process.stdout.write(`${res.headers.get('x-message-id') ?? 'published'}\n`);
}

interface EnvelopeFrame {
  id: string;
  subtopic: string;
  publisher: string;
  content_type: string;
  received_at: string;
  payload: string;
}

/** A payload as a person reads it: its text when it is UTF-8 text, else its size and base64. */
function readable(frame: EnvelopeFrame): string {
  const bytes = Buffer.from(frame.payload, 'base64');
  const textual = /json|^text\//.test(frame.content_type);
  const text = bytes.toString('utf8');
  if (textual && !text.includes('\uFFFD')) return text.replace(/\r?\n$/, ''); // one line a message, even when it ends with its own newline
  return `(${bytes.length} bytes) ${frame.payload}`;
}

/** Tails a channel over the WebSocket API until Ctrl-C (exit 0) or until the platform ends it (exit 1, with its reason). */
export async function subscribe(env: NodeJS.ProcessEnv, [channel]: [string], options: { subtopic?: string; json?: boolean }): Promise<void> {
  const s = await openSession(env);
  const url = `${s.url.replace(/^http/, 'ws')}/ws/channels/${encodeURIComponent(channel)}/messages${subtopicPath(options.subtopic)}?envelope=true`;
  await follow(url, s.token, s.url, {
    opened: `subscribed to ${channel}${options.subtopic ? ` (${options.subtopic})` : ''}; Ctrl-C to stop`,
    what: 'the subscription',
    onFrame: (data) => {
      if (options.json) return void process.stdout.write(data.toString('utf8') + '\n');
      const frame = JSON.parse(data.toString('utf8')) as EnvelopeFrame;
      process.stdout.write(`${frame.received_at}  ${frame.subtopic || '-'}  ${frame.publisher}  ${readable(frame)}\n`);
    },
  });
}

type Filters = { type?: 'senml' | 'json' | 'binary'; subtopic?: string; publisher?: string; name?: string; from?: string; to?: string };

function filterQuery(options: Filters) {
  const keys = ['type', 'subtopic', 'publisher', 'name', 'from', 'to'] as const;
  return Object.fromEntries(keys.filter((k) => options[k] !== undefined).map((k) => [k, options[k]])) as Filters;
}

function time(t: unknown): string {
  return typeof t === 'number' ? new Date(t * 1000).toISOString() : String(t ?? '');
}

type Row = Record<string, unknown>;

export async function query(env: NodeJS.ProcessEnv, [channel]: [string], options: PageOptions & Filters & { dir?: 'asc' | 'desc' }): Promise<void> {
  const s = await openSession(env);
  const q = { ...filterQuery(options), ...(options.dir ? { dir: options.dir } : {}) };
  const value = (r: Row) => r.value ?? r.string_value ?? r.bool_value ?? r.data_value ?? r.document ?? r.payload;
  const columns: [string, (r: Row) => unknown][] =
    options.type === 'json' || options.type === 'binary'
      ? [['time', (r) => time(r.time)], ['subtopic', (r) => r.subtopic], ['publisher', (r) => r.publisher], [options.type === 'json' ? 'document' : 'payload', value]]
      : [['time', (r) => time(r.time)], ['subtopic', (r) => r.subtopic], ['publisher', (r) => r.publisher], ['name', (r) => r.name], ['value', value], ['unit', (r) => r.unit]];
  await listCommand('messages', options, async (page) => (await ok(s.api.GET('/channels/{id}/messages', { params: { path: { id: channel }, query: { ...q, ...page, total: true } } }))) as { total: number; offset: number; limit: number; messages: Row[] }, columns);
}

export async function aggregate(env: NodeJS.ProcessEnv, [channel]: [string], options: OutputOptions & Filters & { aggregation: 'min' | 'max' | 'avg' | 'sum' | 'count'; interval: string }): Promise<void> {
  const s = await openSession(env);
  const page = await ok(s.api.GET('/channels/{id}/messages', { params: { path: { id: channel }, query: { ...filterQuery(options), aggregation: options.aggregation, interval: options.interval, limit: 1000 } } }));
  if (options.json) return printJson(page);
  printTable(page.messages as Row[], [['time', (r) => time(r.time)], ['name', (r) => r.name], [options.aggregation, (r) => r.value], ['records', (r) => r.count]]);
}

/** Streams the platform's CSV as it comes, to the file or standard output. */
export async function exportCsv(env: NodeJS.ProcessEnv, [channel]: [string], options: Filters & { output?: string }): Promise<void> {
  const s = await openSession(env);
  const { response, error } = await s.api.GET('/channels/{id}/messages', { params: { path: { id: channel }, query: { ...filterQuery(options), format: 'csv' } }, parseAs: 'stream' });
  if (!response.ok) throw new Refusal(problemOf(response, error ?? (await response.json().catch(() => undefined))));
  const body = Readable.fromWeb(response.body as WebReadableStream);
  await pipeline(body, options.output ? createWriteStream(options.output) : process.stdout);
}
