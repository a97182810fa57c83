// What the data pages share: the shapes the readers API answers with, taken from its generated
// schema (a page's `messages` are records, documents, payloads or aggregated values, by `type` and
// `aggregation`), payloads shown as text or hex, and a file saved from a Blob.
import type { paths } from '../api/schema';

type Messages = paths['/channels/{id}/messages']['get']['responses'][200]['content']['application/json']['messages'];
type Item<A> = A extends (infer T)[] ? T : never;
type ItemWith<K extends string> = Extract<Item<Messages>, Record<K, unknown>>;

/** A stored SenML record (`type=senml`): only the value field it has. Times are Unix seconds. */
export type StoredRecord = Exclude<ItemWith<'name' | 'channel'>, ItemWith<'count'>>;
/** A stored JSON document (`type=json`). */
export type StoredDocument = ItemWith<'document'>;
/** A stored opaque payload (`type=binary`), base64. */
export type StoredPayload = ItemWith<'payload'>;
/** One interval of an aggregation: its start (Unix seconds), the aggregated value, the records in it. */
export type AggregatedValue = ItemWith<'count'>;

export type StoredKind = 'senml' | 'json' | 'binary';

/** What a channel's messages are stored as, by the content type payloads without one are taken as. */
export function storedKindOf(contentType: string): StoredKind {
  if (contentType === 'application/json') return 'json';
  if (contentType === 'application/octet-stream') return 'binary';
  return 'senml';
}

/** A time in Unix seconds, as the user's locale writes it. */
export function formatSeconds(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString();
}

/** A `datetime-local` input's value (the user's local time) as RFC 3339, for `from` and `to`; undefined when empty. */
export function rfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** An RFC 3339 time as a `datetime-local` input's value, in the user's local time (to the second). */
export function localInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function bytesOf(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** The bytes as UTF-8 text, or undefined when they are not (or hold control characters other than tab and line ends). */
export function textOf(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // eslint-disable-next-line no-control-regex
    return /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

const hexShown = 4096; // bytes of a payload shown in hex; the rest is counted

/** A hex dump: 16 bytes a line, each line led by its offset. */
export function hexOf(bytes: Uint8Array): string {
  const lines: string[] = [];
  const end = Math.min(bytes.length, hexShown);
  for (let at = 0; at < end; at += 16) {
    const row = Array.from(bytes.subarray(at, Math.min(at + 16, end)), (b) => b.toString(16).padStart(2, '0'));
    lines.push(`${at.toString(16).padStart(6, '0')}  ${row.join(' ')}`);
  }
  if (bytes.length > end) lines.push(`… ${bytes.length - end} more bytes`);
  return lines.join('\n');
}

/** Saves a Blob as a file: a blob: URL behind a download link (the Content-Security-Policy allows it, as it runs no script). */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // the download has started from the URL by the time a task later runs
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
