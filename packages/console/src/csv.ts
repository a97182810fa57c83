// Device CSV files, read and written in the browser. The columns are the CLI's `devices import`
// ones (docs/cli.md): `name` (required), `tags` (separated by `;`), `metadata` (a JSON object),
// `status` (`enabled` or `disabled`), in any order and case. Unlike the CLI, which stops at the
// first bad line, the console keeps every row with what is wrong with it, so the preview can show
// them all before anything is sent.

export interface NewDevice {
  name: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  status?: 'enabled' | 'disabled';
}

/** One data line of the file: the device it describes, or why it describes none. */
export interface CsvRow {
  line: number;
  name: string;
  device?: NewDevice;
  error?: string;
}

export const deviceColumns = ['name', 'tags', 'metadata', 'status'];

/**
 * The records of a CSV text (RFC 4180: fields separated by commas, quoted with `"` when they hold
 * commas, quotes or line breaks, a quote inside doubled), each with the line it starts on.
 */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte order mark, as spreadsheets write it
  const endRecord = () => {
    fields.push(field);
    if (fields.length > 1 || fields[0]!.trim() !== '') records.push({ line: start, fields });
    fields = [];
    field = '';
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else field += c;
  }
  if (quoted) throw new Error(`line ${start}: a quoted field is not closed`);
  endRecord();
  return records;
}

/** The devices of a device CSV file, one row a data line, each either a device or its error. */
export function devicesFromCsv(text: string): CsvRow[] {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header) throw new Error('the file is empty: a header line, then one device a line');
  const columns = header.fields.map((h) => h.trim().toLowerCase());
  const unknown = columns.filter((c) => !deviceColumns.includes(c));
  if (unknown.length > 0 || !columns.includes('name')) throw new Error(`the columns are name, tags, metadata and status (name required)${unknown.length ? `, not ${unknown.join(', ')}` : ''}`);
  if (records.length === 0) throw new Error('the file holds no device (a header line, then one device a line)');
  return records.map(({ line, fields }) => {
    const cell = (column: string) => (fields[columns.indexOf(column)] ?? '').trim();
    const name = cell('name');
    const fail = (error: string): CsvRow => ({ line, name, error });
    if (fields.length > columns.length) return fail(`${fields.length} fields, the header names ${columns.length}`);
    if (!name) return fail('the name is empty');
    if (name.length > 256) return fail('the name is longer than 256 characters');
    const device: NewDevice = { name };
    const tags = cell('tags')
      .split(';')
      .map((t) => t.trim())
      .filter(Boolean);
    if (tags.some((t) => t.length > 64)) return fail('a tag is longer than 64 characters');
    if (tags.length) device.tags = tags;
    const metadata = cell('metadata');
    if (metadata) {
      let m: unknown;
      try {
        m = JSON.parse(metadata);
      } catch {
        return fail('metadata is not JSON');
      }
      if (typeof m !== 'object' || m === null || Array.isArray(m)) return fail('metadata is a JSON object');
      device.metadata = m as Record<string, unknown>;
    }
    const status = cell('status');
    if (status) {
      if (status !== 'enabled' && status !== 'disabled') return fail('status is enabled or disabled');
      device.status = status;
    }
    return { line, name, device };
  });
}

/** A CSV field, quoted when it must be. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** A CSV text of a header and rows (CRLF line ends, as RFC 4180 has them). */
export function toCsv(header: string[], rows: string[][]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}
