// Registration CSV files, read in the browser. The columns and their reading are the CLI's
// `fleetwire registrations import` ones (docs/cli.md): `serial` (required), `model`, `public_key`
// (a PEM public key, quoted as CSV quotes a field with line breaks, or the hex SHA-256 of its DER,
// openssl's colon-separated form too), `channel_ids` and `group_ids` (separated by `;`), in any
// order and case. As for devices, every row is kept with what is wrong with it, for the preview.
import { parseCsv } from './csv.ts';
import type { NewRegistration } from './api/types.ts';

export const registrationColumns = ['serial', 'model', 'public_key', 'channel_ids', 'group_ids'];

/** One data line of the file: the registration it describes, or why it describes none. */
export interface RegistrationRow {
  line: number;
  serial: string;
  registration?: NewRegistration;
  error?: string;
}

const serialPattern = /^[\x21-\x7e]{1,128}$/; // the API's: printable ASCII, no spaces
const fingerprintPattern = /^[0-9a-f]{64}$/;
const pemPublicKey = '-----BEGIN PUBLIC KEY-----';

/** A key's SHA-256 as the platform keeps it (lowercase hex, no colons), or undefined. */
export function asFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/:/g, '').toLowerCase();
  return fingerprintPattern.test(hex) ? hex : undefined;
}

/** What an operator gives as a device's key: a fingerprint, or a PEM public key, or why it is neither. */
export function publicKeyOf(text: string): { key?: string; error?: string } {
  const trimmed = text.trim();
  if (!trimmed) return {};
  const hex = asFingerprint(trimmed);
  if (hex !== undefined) return { key: hex };
  if (trimmed.startsWith(pemPublicKey)) return { key: trimmed.endsWith('\n') ? trimmed : `${trimmed}\n` };
  return { error: 'public_key is a PEM public key (BEGIN PUBLIC KEY) or the hex SHA-256 of one' };
}

const ids = (cell: string) =>
  cell
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean);

export function registrationsFromCsv(text: string): RegistrationRow[] {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header) throw new Error('the file is empty: a header line, then one device a line');
  const columns = header.fields.map((h) => h.trim().toLowerCase());
  const unknown = columns.filter((c) => !registrationColumns.includes(c));
  if (unknown.length > 0 || !columns.includes('serial')) throw new Error(`the columns are ${registrationColumns.join(', ')} (serial required)${unknown.length ? `, not ${unknown.join(', ')}` : ''}`);
  if (records.length === 0) throw new Error('the file holds no registration (a header line, then one device a line)');
  // the platform names a serial given twice too, but only after the whole file was sent
  const seen = new Map<string, number>();
  return records.map(({ line, fields }) => {
    const cell = (column: string) => (columns.includes(column) ? (fields[columns.indexOf(column)] ?? '').trim() : '');
    const serial = cell('serial');
    const fail = (error: string): RegistrationRow => ({ line, serial, error });
    if (fields.length > columns.length) return fail(`${fields.length} fields, the header names ${columns.length}`);
    if (!serial) return fail('no serial');
    if (!serialPattern.test(serial)) return fail('the serial is 1 to 128 printable characters without spaces');
    const before = seen.get(serial);
    if (before !== undefined) return fail(`the serial is on line ${before} too`);
    seen.set(serial, line);
    const registration: NewRegistration = { serial };
    const model = cell('model');
    if (model) registration.model = model;
    const key = publicKeyOf(cell('public_key'));
    if (key.error) return fail(key.error);
    if (key.key) registration.public_key = key.key;
    const channels = ids(cell('channel_ids'));
    if (channels.length) registration.channel_ids = channels;
    const groups = ids(cell('group_ids'));
    if (groups.length) registration.group_ids = groups;
    return { line, serial, registration };
  });
}
