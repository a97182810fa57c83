// `fleetwire devices|channels|groups …`, `connect` and `disconnect`.
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { UsageError } from '../errors.js';
import { done, note, printTable, show, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, orgSession } from '../session.js';

type OrgOptions = OutputOptions & { org?: string };
type Tagged = { tag?: string[]; metadata?: Record<string, unknown> };
type Device = { id: string; name: string; tags: string[]; status: string; created_at: string; secret?: string };

const deviceColumns: [string, (d: Device) => unknown][] = [
  ['id', (d) => d.id],
  ['name', (d) => d.name],
  ['status', (d) => d.status],
  ['tags', (d) => d.tags],
  ['created', (d) => d.created_at],
];

/** A printed secret comes with the reminder that it is shown only once (on standard error, not to spoil a pipe). */
function showWithSecret(options: OutputOptions, value: Record<string, unknown>): void {
  show(options, value);
  if (!options.json) note('the secret is shown only this once: keep it now');
}

// --- devices

export async function listDevices(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; name?: string; tag?: string; metadata?: string; status?: 'enabled' | 'disabled'; group?: string; sort?: 'name' | 'created_at' | 'updated_at'; dir?: 'asc' | 'desc' }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const filters = {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.tag !== undefined ? { tag: options.tag } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    ...(options.status !== undefined ? { status: options.status } : {}),
    ...(options.group !== undefined ? { group_id: options.group } : {}),
    ...(options.sort !== undefined ? { sort: options.sort } : {}),
    ...(options.dir !== undefined ? { dir: options.dir } : {}),
  };
  await listCommand('devices', options, (q) => ok(s.api.GET('/orgs/{org}/devices', { params: { path: { org }, query: { ...filters, ...q } } })), deviceColumns);
}

export async function createDevice(env: NodeJS.ProcessEnv, [name]: [string], options: OrgOptions & Tagged & { disabled?: boolean }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const body = { name, ...(options.tag ? { tags: options.tag } : {}), ...(options.metadata ? { metadata: options.metadata } : {}), ...(options.disabled ? { status: 'disabled' as const } : {}) };
  showWithSecret(options, await ok(s.api.POST('/orgs/{org}/devices', { params: { path: { org } }, body })));
}

type NewDevice = { name: string; tags?: string[]; metadata?: Record<string, unknown>; status?: 'enabled' | 'disabled' };

/** The rows of a device CSV file: a header naming `name` and any of `tags` (separated by `;`), `metadata` (a JSON object), `status`. */
export function devicesFromCsv(text: string): NewDevice[] {
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true });
  } catch (e) {
    throw new UsageError(`the file is not CSV: ${(e as Error).message}`);
  }
  if (rows.length === 0) throw new UsageError('the file holds no device (a header line, then one device a line)');
  const known = new Set(['name', 'tags', 'metadata', 'status']);
  const unknown = Object.keys(rows[0]!).filter((k) => !known.has(k));
  if (unknown.length > 0 || !('name' in rows[0]!)) throw new UsageError(`the columns are name, tags, metadata and status (name required)${unknown.length ? `, not ${unknown.join(', ')}` : ''}`);
  return rows.map((r, i) => {
    const line = i + 2;
    const d: NewDevice = { name: r.name! };
    if (r.tags) d.tags = r.tags.split(';').map((t) => t.trim()).filter(Boolean);
    if (r.metadata) {
      let m: unknown;
      try {
        m = JSON.parse(r.metadata);
      } catch {
        throw new UsageError(`line ${line}: metadata is not JSON`);
      }
      if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new UsageError(`line ${line}: metadata is a JSON object`);
      d.metadata = m as Record<string, unknown>;
    }
    if (r.status) {
      if (r.status !== 'enabled' && r.status !== 'disabled') throw new UsageError(`line ${line}: status is enabled or disabled`);
      d.status = r.status;
    }
    return d;
  });
}

export async function importDevices(env: NodeJS.ProcessEnv, [file]: [string], options: OrgOptions): Promise<void> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const devices = devicesFromCsv(text);
  const { s, org } = await orgSession(env, options);
  const created = await ok(s.api.POST('/orgs/{org}/devices/bulk', { params: { path: { org } }, body: { devices } }));
  if (options.json) return show(options, created);
  printTable(created.devices as Device[], [...deviceColumns.slice(0, 2), ['secret', (d) => d.secret]]);
  note(`created ${created.devices.length} devices; the secrets are shown only this once: keep them now`);
}

export async function showDevice(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.GET('/orgs/{org}/devices/{id}', { params: { path: { org, id } } })));
}

export async function enableDevice(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.POST('/orgs/{org}/devices/{id}/enable', { params: { path: { org, id } } })));
}

export async function disableDevice(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.POST('/orgs/{org}/devices/{id}/disable', { params: { path: { org, id } } })));
}

export async function rotateSecret(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  showWithSecret(options, await ok(s.api.POST('/orgs/{org}/devices/{id}/secret', { params: { path: { org, id } } })));
}

export async function deleteDevice(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/devices/{id}', { params: { path: { org, id } } }));
  done(options, `deleted device ${id}`);
}

// --- channels

export async function listChannels(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; name?: string; tag?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const filters = { ...(options.name !== undefined ? { name: options.name } : {}), ...(options.tag !== undefined ? { tag: options.tag } : {}) };
  await listCommand('channels', options, (q) => ok(s.api.GET('/orgs/{org}/channels', { params: { path: { org }, query: { ...filters, ...q } } })), [
    ['id', (c) => c.id],
    ['name', (c) => c.name],
    ['content type', (c) => c.content_type],
    ['tags', (c) => c.tags],
    ['created', (c) => c.created_at],
  ]);
}

export async function createChannel(env: NodeJS.ProcessEnv, [name]: [string], options: OrgOptions & Tagged & { contentType?: 'application/senml+json' | 'application/json' | 'application/octet-stream' }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const body = { name, ...(options.tag ? { tags: options.tag } : {}), ...(options.metadata ? { metadata: options.metadata } : {}), ...(options.contentType ? { content_type: options.contentType } : {}) };
  show(options, await ok(s.api.POST('/orgs/{org}/channels', { params: { path: { org } }, body })));
}

export async function showChannel(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.GET('/orgs/{org}/channels/{id}', { params: { path: { org, id } } })));
}

export async function deleteChannel(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/channels/{id}', { params: { path: { org, id } } }));
  done(options, `deleted channel ${id}`);
}

// --- groups

export async function listGroups(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string; name?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await listCommand('groups', options, (q) => ok(s.api.GET('/orgs/{org}/groups', { params: { path: { org }, query: { ...(options.name !== undefined ? { name: options.name } : {}), ...q } } })), [
    ['id', (g) => g.id],
    ['name', (g) => g.name],
    ['tags', (g) => g.tags],
    ['created', (g) => g.created_at],
  ]);
}

export async function createGroup(env: NodeJS.ProcessEnv, [name]: [string], options: OrgOptions & Tagged): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.POST('/orgs/{org}/groups', { params: { path: { org } }, body: { name, ...(options.tag ? { tags: options.tag } : {}) } })));
}

export async function showGroup(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  show(options, await ok(s.api.GET('/orgs/{org}/groups/{id}', { params: { path: { org, id } } })));
}

export async function deleteGroup(env: NodeJS.ProcessEnv, [id]: [string], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/groups/{id}', { params: { path: { org, id } } }));
  done(options, `deleted group ${id}`);
}

export async function listGroupDevices(env: NodeJS.ProcessEnv, [id]: [string], options: PageOptions & { org?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await listCommand('devices', options, (q) => ok(s.api.GET('/orgs/{org}/groups/{id}/devices', { params: { path: { org, id }, query: q } })), deviceColumns);
}

export async function addToGroup(env: NodeJS.ProcessEnv, [id, devices]: [string, string[]], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.POST('/orgs/{org}/groups/{id}/devices', { params: { path: { org, id } }, body: { device_ids: devices } }));
  done(options, `added ${devices.length} device${devices.length === 1 ? '' : 's'} to group ${id}`);
}

export async function removeFromGroup(env: NodeJS.ProcessEnv, [id, devices]: [string, string[]], options: OrgOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/groups/{id}/devices', { params: { path: { org, id } }, body: { device_ids: devices } }));
  done(options, `removed ${devices.length} device${devices.length === 1 ? '' : 's'} from group ${id}`);
}

// --- connections

type ConnectOptions = OrgOptions & { device: string[]; channel: string[]; type?: string[] };

function connectionTypes(options: ConnectOptions): ('publish' | 'subscribe')[] {
  const types = [...new Set(options.type ?? ['publish', 'subscribe'])];
  for (const t of types) if (t !== 'publish' && t !== 'subscribe') throw new UsageError(`--type is publish, subscribe or both, not ${JSON.stringify(t)}`);
  return types as ('publish' | 'subscribe')[];
}

export async function connect(env: NodeJS.ProcessEnv, _args: unknown[], options: ConnectOptions): Promise<void> {
  const types = connectionTypes(options);
  const { s, org } = await orgSession(env, options);
  await ok(s.api.POST('/orgs/{org}/connections', { params: { path: { org } }, body: { device_ids: options.device, channel_ids: options.channel, types } }));
  done(options, `connected ${options.device.length} device(s) to ${options.channel.length} channel(s) for ${types.join(' and ')}`);
}

export async function disconnect(env: NodeJS.ProcessEnv, _args: unknown[], options: ConnectOptions): Promise<void> {
  const types = connectionTypes(options);
  const { s, org } = await orgSession(env, options);
  await ok(s.api.DELETE('/orgs/{org}/connections', { params: { path: { org } }, body: { device_ids: options.device, channel_ids: options.channel, types } }));
  done(options, `disconnected ${options.device.length} device(s) from ${options.channel.length} channel(s) for ${types.join(' and ')}`);
}
