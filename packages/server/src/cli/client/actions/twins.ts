// `fleetwire twin get|set|history|query`: device twins (docs/twins.md).
import { done, printJson, printTable, show, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, orgSession } from '../session.js';

type TwinOptions = OutputOptions & { org?: string; name?: string };

/** The twin's path: the default one, or a named one. */
const pathOf = (name: string | undefined) => (name === undefined || name === 'default' ? ('/orgs/{org}/devices/{id}/twin' as const) : ('/orgs/{org}/devices/{id}/twins/{name}' as const));

export async function getTwin(env: NodeJS.ProcessEnv, [device]: [string], options: TwinOptions): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const params = { path: { org, id: device, name: options.name ?? 'default' } };
  const twin = await ok(options.name && options.name !== 'default' ? s.api.GET('/orgs/{org}/devices/{id}/twins/{name}', { params }) : s.api.GET('/orgs/{org}/devices/{id}/twin', { params }));
  if (options.json) return printJson(twin);
  show(options, { device: twin.device_id, name: twin.name, version: twin.version, updated: twin.updated_at ?? '-', desired: JSON.stringify(twin.desired), reported: JSON.stringify(twin.reported), delta: JSON.stringify(twin.delta), tags: JSON.stringify(twin.tags ?? {}), rejected: Object.keys(twin.rejected).length ? JSON.stringify(twin.rejected) : '-' });
}

/**
 * Changes desired state (a JSON merge patch: `null` removes a member) and tags. With
 * `--if-version`, refused when the twin moved past the version given.
 */
export async function setTwin(env: NodeJS.ProcessEnv, [device, desired]: [string, Record<string, unknown> | undefined], options: TwinOptions & { tags?: Record<string, unknown>; ifVersion?: number }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const body = { ...(desired ? { desired } : {}), ...(options.tags ? { tags: options.tags } : {}) };
  const params = { path: { org, id: device, name: options.name ?? 'default' }, ...(options.ifVersion !== undefined ? { header: { 'if-match': `"${options.ifVersion}"` } } : {}) };
  const twin = await ok(pathOf(options.name) === '/orgs/{org}/devices/{id}/twin' ? s.api.PATCH('/orgs/{org}/devices/{id}/twin', { params, body }) : s.api.PATCH('/orgs/{org}/devices/{id}/twins/{name}', { params, body }));
  if (options.json) return printJson(twin);
  done(options, `twin ${twin.name} of ${twin.device_id} is at version ${twin.version}; delta ${JSON.stringify(twin.delta)}`);
}

export async function twinHistory(env: NodeJS.ProcessEnv, [device]: [string], options: TwinOptions & { fromVersion?: number; limit?: number }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const query = { from_version: options.fromVersion ?? 0, limit: options.limit ?? 100 };
  const params = { path: { org, id: device, name: options.name ?? 'default' }, query };
  const page = await ok(options.name && options.name !== 'default' ? s.api.GET('/orgs/{org}/devices/{id}/twins/{name}/history', { params }) : s.api.GET('/orgs/{org}/devices/{id}/twin/history', { params }));
  if (options.json) return printJson(page);
  printTable(page.changes, [
    ['version', (c) => c.version],
    ['at', (c) => c.at],
    ['by', (c) => (c.actor.id ? `${c.actor.kind} ${c.actor.id}` : c.actor.kind)],
    ['patch', (c) => JSON.stringify(c.patch)],
  ]);
  if (page.next_version !== undefined) process.stderr.write(`more changes follow: --from-version ${page.next_version}\n`);
}

export async function queryTwins(env: NodeJS.ProcessEnv, [where]: [string[]], options: PageOptions & { org?: string; name?: string }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  await listCommand('twins', options, (q) => ok(s.api.GET('/orgs/{org}/twins', { params: { path: { org }, query: { ...q, where, ...(options.name ? { name: options.name } : {}) } } })), [
    ['device', (t) => t.device_id],
    ['name', (t) => t.name],
    ['version', (t) => t.version],
    ['reported', (t) => JSON.stringify(t.reported)],
    ['delta', (t) => JSON.stringify(t.delta)],
  ]);
}
