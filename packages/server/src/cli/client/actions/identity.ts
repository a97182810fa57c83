// `fleetwire registrations|enrolment-tokens|certificates|identity …`: device identity
// (docs/identity.md): devices registered ahead of enrolment, one-time enrolment tokens, the
// certificates devices enrolled for, the audit trail and the organization's CA.
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { operations } from '../../api-types.js';
import { CliError, UsageError } from '../errors.js';
import { done, note, printTable, show, type Column, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, orgSession } from '../session.js';

type OrgOptions = OutputOptions & { org?: string };
type NewRegistration = NonNullable<operations['createRegistration']['requestBody']>['content']['application/json'];
type Registration = operations['getRegistration']['responses'][200]['content']['application/json'];
type Certificate = operations['getCertificate']['responses'][200]['content']['application/json'];
type RevocationReason = NonNullable<NonNullable<operations['revokeCertificate']['requestBody']>['content']['application/json']['reason']>;
type RegistrationState = NonNullable<NonNullable<operations['listRegistrations']['parameters']['query']>['state']>;

/** The most registrations POST …/registrations/bulk takes at once; within one request it is all or nothing. */
export const importChunk = 1000;

const fingerprint = /^[0-9a-f]{64}$/;

const registrationColumns: Column<Registration>[] = [
  ['id', (r) => r.id],
  ['serial', (r) => r.serial],
  ['model', (r) => r.model],
  ['state', (r) => r.state],
  ['device', (r) => r.device_id],
  ['created', (r) => r.created_at],
];

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A key's SHA-256 as the platform keeps it (lowercase hex; openssl's colon-separated form too), or undefined. */
function asFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/:/g, '').toLowerCase();
  return fingerprint.test(hex) ? hex : undefined;
}

// --- registrations

export async function listRegistrations(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; state?: RegistrationState; serial?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const filters = { ...(options.state !== undefined ? { state: options.state } : {}), ...(options.serial !== undefined ? { serial: options.serial } : {}) };
  await listCommand('registrations', options, (q) => ok(s.api.GET('/orgs/{org}/registrations', { params: { path: { org }, query: { ...filters, ...q } } })), registrationColumns);
}

/** `--public-key`: a fingerprint as it is, else the file holding the PEM public key. */
function publicKeyOption(value: string): string {
  const hex = asFingerprint(value);
  if (hex !== undefined) return hex;
  const pem = readInput(value);
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) throw new UsageError(`${value} holds no PEM public key (-----BEGIN PUBLIC KEY-----; openssl pkey -in device.key -pubout writes one)`);
  return pem;
}

export async function createRegistration(env: NodeJS.ProcessEnv, [serial]: [string], options: OrgOptions & { model?: string; publicKey?: string; channel?: string[]; group?: string[] }): Promise<void> {
  const body: NewRegistration = {
    serial,
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.publicKey !== undefined ? { public_key: publicKeyOption(options.publicKey) } : {}),
    ...(options.channel?.length ? { channel_ids: options.channel } : {}),
    ...(options.group?.length ? { group_ids: options.group } : {}),
  };
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.POST('/orgs/{org}/registrations', { params: { path: { org } }, body })));
}

const csvColumns = ['serial', 'model', 'public_key', 'channel_ids', 'group_ids'];

/**
 * The rows of a registration CSV file: a header naming `serial` and any of `model`, `public_key`
 * (a PEM public key, quoted as CSV quotes a field with line breaks, or its SHA-256 in hex),
 * `channel_ids` and `group_ids` (separated by `;`). Rows are counted from 1 after the header: a
 * quoted PEM spans several lines of the file.
 */
export function registrationsFromCsv(text: string): NewRegistration[] {
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true });
  } catch (e) {
    throw new UsageError(`the file is not CSV: ${(e as Error).message}`);
  }
  if (rows.length === 0) throw new UsageError('the file holds no registration (a header line, then one device a row)');
  const unknown = Object.keys(rows[0]!).filter((k) => !csvColumns.includes(k));
  if (unknown.length > 0 || !('serial' in rows[0]!)) throw new UsageError(`the columns are ${csvColumns.join(', ')} (serial required)${unknown.length ? `, not ${unknown.join(', ')}` : ''}`);
  const ids = (cell: string | undefined) => (cell ?? '').split(';').map((x) => x.trim()).filter(Boolean);
  const seen = new Map<string, number>();
  return rows.map((r, i) => {
    const row = i + 1;
    if (!r.serial) throw new UsageError(`row ${row}: no serial`);
    // the platform names a serial given twice too, but only within one request of an import in several
    const before = seen.get(r.serial);
    if (before !== undefined) throw new UsageError(`row ${row}: serial ${r.serial} is on row ${before} too`);
    seen.set(r.serial, row);
    const reg: NewRegistration = { serial: r.serial };
    if (r.model) reg.model = r.model;
    if (r.public_key) {
      const hex = asFingerprint(r.public_key);
      if (hex === undefined && !r.public_key.startsWith('-----BEGIN PUBLIC KEY-----')) throw new UsageError(`row ${row}: public_key is a PEM public key or the hex SHA-256 of one`);
      reg.public_key = hex ?? r.public_key;
    }
    if (ids(r.channel_ids).length) reg.channel_ids = ids(r.channel_ids);
    if (ids(r.group_ids).length) reg.group_ids = ids(r.group_ids);
    return reg;
  });
}

/**
 * Registers every row of the file. Up to 1000 rows go in one request, all or none. A larger file
 * goes in requests of 1000, each all or none, one after the other: when one is refused, the rows
 * before it stay registered and the command says which, so that they can be taken out of the file
 * before it is run again. The note says so before anything is sent.
 */
export async function importRegistrations(env: NodeJS.ProcessEnv, [file]: [string], options: OrgOptions): Promise<void> {
  const all = registrationsFromCsv(readInput(file));
  const { s, org } = await orgSession(env, options);
  const chunks = Math.ceil(all.length / importChunk);
  if (chunks > 1) note(`${all.length} rows go in ${chunks} requests of at most ${importChunk}: each is all or nothing, the file as a whole is not`);
  const made: Registration[] = [];
  for (let i = 0; i < all.length; i += importChunk) {
    const rows = all.slice(i, i + importChunk);
    try {
      made.push(...(await ok(s.api.POST('/orgs/{org}/registrations/bulk', { params: { path: { org } }, body: { registrations: rows } }))).registrations);
    } catch (e) {
      if (made.length === 0) throw e;
      throw new CliError(`rows ${i + 1}-${i + rows.length}: ${(e as Error).message}; rows 1-${made.length} were registered before (up to serial ${made.at(-1)!.serial}) and stay so, nothing after row ${i} was: take rows 1-${made.length} out of the file before running it again`);
    }
  }
  if (options.json) return show(options, { registrations: made });
  printTable(made, registrationColumns.slice(0, 4));
  note(`registered ${made.length} device${made.length === 1 ? '' : 's'}`);
}

export async function showRegistration(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.GET('/orgs/{org}/registrations/{id}', { params: { path: { org, id } } })));
}

/** suspend, resume, reset or revoke: each answers the registration as it is now. */
function transition(action: 'suspend' | 'resume' | 'reset' | 'revoke') {
  return async (env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> => {
    const { s, org } = await orgSession(env, options);
    show(options, await ok(s.api.POST(`/orgs/{org}/registrations/{id}/${action}`, { params: { path: { org, id } } })));
  };
}

export const suspendRegistration = transition('suspend');
export const resumeRegistration = transition('resume');
export const resetRegistration = transition('reset');
export const revokeRegistration = transition('revoke');

export async function deleteRegistration(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/registrations/{id}', { params: { path: { org, id } } }));
  done(options, `deleted registration ${id}`);
}

// --- enrolment tokens

export async function createEnrolmentToken(env: NodeJS.ProcessEnv, _args: unknown[], options: OrgOptions & { expiresIn?: number; serialPattern?: string }): Promise<void> {
  const body = { ...(options.expiresIn !== undefined ? { expires_in: options.expiresIn } : {}), ...(options.serialPattern !== undefined ? { serial_pattern: options.serialPattern } : {}) };
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.POST('/orgs/{org}/enrolment-tokens', { params: { path: { org } }, body })));
  // the platform keeps only its hash: no later command can show it again
  if (!options.json) note('the token is shown only this once: give it to the device now (POST /enrol with its CSR)');
}

export async function listEnrolmentTokens(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await listCommand('tokens', options, (q) => ok(s.api.GET('/orgs/{org}/enrolment-tokens', { params: { path: { org }, query: q } })), [
    ['id', (t) => t.id],
    ['serial pattern', (t) => t.serial_pattern],
    ['expires', (t) => t.expires_at],
    ['used', (t) => t.used_at],
    ['registration', (t) => t.registration_id],
    ['created', (t) => t.created_at],
  ]);
}

export async function deleteEnrolmentToken(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/enrolment-tokens/{id}', { params: { path: { org, id } } }));
  done(options, `deleted enrolment token ${id}`);
}

// --- certificates

/** A certificate for people: its facts, without the PEM (`certificates show --pem` prints that alone). */
function printCertificate(options: OutputOptions, c: Certificate): void {
  if (options.json) return show(options, c);
  const { certificate: _pem, ...facts } = c;
  show(options, facts);
}

export async function listCertificates(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; device?: string; status?: 'active' | 'revoked'; expiringBefore?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const filters = {
    ...(options.device !== undefined ? { device_id: options.device } : {}),
    ...(options.status !== undefined ? { status: options.status } : {}),
    ...(options.expiringBefore !== undefined ? { expiring_before: options.expiringBefore } : {}),
  };
  await listCommand('certificates', options, (q) => ok(s.api.GET('/orgs/{org}/certificates', { params: { path: { org }, query: { ...filters, ...q } } })), [
    ['serial', (c) => c.serial],
    ['device', (c) => c.device_id],
    ['status', (c) => c.status],
    ['not after', (c) => c.not_after],
    ['revoked', (c) => c.revoked_at],
    ['reason', (c) => c.revocation_reason],
  ]);
}

export async function showCertificate(env: NodeJS.ProcessEnv, [serial]: [string], options: OrgOptions & { pem?: boolean }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const c = await ok(s.api.GET('/orgs/{org}/certificates/{serial}', { params: { path: { org, serial } } }));
  if (options.pem) process.stdout.write(c.certificate.endsWith('\n') ? c.certificate : `${c.certificate}\n`);
  else printCertificate(options, c);
}

export async function revokeCertificate(env: NodeJS.ProcessEnv, [serial]: [string], options: OrgOptions & { reason?: RevocationReason }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  printCertificate(options, await ok(s.api.POST('/orgs/{org}/certificates/{serial}/revoke', { params: { path: { org, serial } }, body: { reason: options.reason ?? 'unspecified' } })));
}

// --- manufacturer CAs

type ManufacturerCa = operations['getManufacturerCa']['responses'][200]['content']['application/json'];

/** A manufacturer CA for people: its facts, without the PEM. */
function printManufacturerCa(options: OutputOptions, ca: ManufacturerCa): void {
  if (options.json) return show(options, ca);
  const { certificate: _pem, ...facts } = ca;
  show(options, facts);
}

export async function createManufacturerCa(env: NodeJS.ProcessEnv, [name, file]: [string, string], options: OrgOptions & { serial: string[]; channel?: string[]; group?: string[] }): Promise<void> {
  const certificate = readInput(file);
  if (!certificate.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${file}: a PEM certificate (BEGIN CERTIFICATE)`);
  const { s, org } = await orgSession(env, options);
  const body = { name, certificate, serials: options.serial, ...(options.channel ? { channel_ids: options.channel } : {}), ...(options.group ? { group_ids: options.group } : {}) };
  printManufacturerCa(options, await ok(s.api.POST('/orgs/{org}/manufacturer-cas', { params: { path: { org } }, body })));
}

export async function listManufacturerCas(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await listCommand('manufacturer_cas', options, (q) => ok(s.api.GET('/orgs/{org}/manufacturer-cas', { params: { path: { org }, query: q } })), [
    ['id', (c) => c.id],
    ['name', (c) => c.name],
    ['serials', (c) => c.serials.join(' ')],
    ['not after', (c) => c.not_after],
    ['fingerprint', (c) => c.fingerprint],
  ]);
}

export async function showManufacturerCa(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  printManufacturerCa(options, await ok(s.api.GET('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org, id } } })));
}

export async function updateManufacturerCa(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions & { name?: string; serial?: string[]; channel?: string[]; group?: string[] }): Promise<void> {
  const body = { ...(options.name !== undefined ? { name: options.name } : {}), ...(options.serial ? { serials: options.serial } : {}), ...(options.channel ? { channel_ids: options.channel } : {}), ...(options.group ? { group_ids: options.group } : {}) };
  if (Object.keys(body).length === 0) throw new UsageError('say what changes: --name, --serial, --channel or --group');
  const { s, org } = await orgSession(env, options);
  printManufacturerCa(options, await ok(s.api.PATCH('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org, id } }, body })));
}

export async function deleteManufacturerCa(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/manufacturer-cas/{id}', { params: { path: { org, id } } }));
  done(options, `deleted manufacturer CA ${id}`);
}

// --- the audit trail and the CA

export async function listIdentityEvents(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; refused?: boolean; registration?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const filters = { ...(options.refused ? { outcome: 'refused' as const } : {}), ...(options.registration !== undefined ? { registration_id: options.registration } : {}) };
  await listCommand('events', options, (q) => ok(s.api.GET('/orgs/{org}/identity-events', { params: { path: { org }, query: { ...filters, ...q } } })), [
    ['time', (e) => e.created_at],
    ['action', (e) => e.action],
    ['outcome', (e) => e.outcome],
    ['code', (e) => e.code],
    ['actor', (e) => e.actor],
    ['registration', (e) => e.registration_id],
    ['detail', (e) => e.detail],
  ]);
}

/** The issuing CA then the root, as one PEM bundle (what a server that checks device certificates is given). */
export async function showCa(env: NodeJS.ProcessEnv, _args: unknown[], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const ca = await ok(s.api.GET('/orgs/{org}/ca', { params: { path: { org } } }));
  if (options.json) return show(options, ca);
  const pem = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
  process.stdout.write(pem(ca.issuing) + pem(ca.root));
  note('the organization\'s issuing CA, then the platform root');
}
