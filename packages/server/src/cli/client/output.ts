// How client commands print: aligned tables for people (colour only on a terminal, and never with
// NO_COLOR), JSON for scripts with --json. Results go to standard output; notes about them (how
// many more pages there are) go to standard error, so that a pipe gets only the results.
import { styleText } from 'node:util';

export interface OutputOptions {
  json?: boolean;
}

export type Column<T> = [header: string, value: (row: T) => unknown];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(cell).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Styled only when standard output is a terminal that takes colours (styleText checks NO_COLOR, FORCE_COLOR and the stream). */
function style(format: Parameters<typeof styleText>[0], text: string): string {
  return styleText(format, text, { stream: process.stdout });
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function note(text: string): void {
  process.stderr.write(text + '\n');
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function printTable<T>(rows: readonly T[], columns: Column<T>[]): void {
  const cells = rows.map((r) => columns.map(([, value]) => cell(value(r))));
  const widths = columns.map(([header], i) => Math.max(header.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write(style('bold', line(columns.map(([h]) => h.toUpperCase()))) + '\n');
  for (const c of cells) process.stdout.write(line(c) + '\n');
}

/** One resource as `field  value` lines. */
export function printRecord(record: Record<string, unknown>): void {
  const keys = Object.keys(record);
  const width = Math.max(...keys.map((k) => k.length));
  for (const k of keys) process.stdout.write(`${style('bold', k.padEnd(width))}  ${cell(record[k])}\n`);
}

/** JSON as it came, or the record for people. */
export function show(options: OutputOptions, value: Record<string, unknown>): void {
  if (options.json) printJson(value);
  else printRecord(value);
}

/** What a command that answers nothing prints: a line for people, `{"ok":true}` for scripts. */
export function done(options: OutputOptions, text: string): void {
  if (options.json) printJson({ ok: true });
  else process.stdout.write(text + '\n');
}

export function success(text: string): string {
  return style('green', text);
}
