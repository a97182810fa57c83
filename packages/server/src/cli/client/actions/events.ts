// `fleetwire events list` (the stored fleet events and audit log) and `fleetwire events tail` (live, over WebSocket).
import type { Column } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, orgSession } from '../session.js';
import { follow } from '../follow.js';

type FleetEvent = { id: string; type: string; time: string; actor: { kind: string; id: string | null }; subject: { kind: string; id: string }; data: Record<string, unknown> };

export interface EventFilterOptions {
  org?: string;
  type?: string[];
  device?: string;
}

const columns: Column<FleetEvent>[] = [
  ['time', (e) => e.time],
  ['type', (e) => e.type],
  ['actor', (e) => (e.actor.id ? `${e.actor.kind}:${e.actor.id}` : e.actor.kind)],
  ['subject', (e) => `${e.subject.kind}:${e.subject.id}`],
  ['detail', (e) => detail(e)],
];

/** The one line a person wants of an event's data: what was called, or the facts it carries. */
function detail(e: FleetEvent): string {
  const { method, route, status, request_id: _id, ...rest } = e.data;
  const call = method !== undefined ? `${String(method)} ${String(route)} ${String(status)}` : '';
  const facts = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return [call, facts].filter(Boolean).join('  ');
}

function typeQuery(options: EventFilterOptions): { type?: string; device?: string } {
  return { ...(options.type?.length ? { type: options.type.join(',') } : {}), ...(options.device !== undefined ? { device: options.device } : {}) };
}

export async function listEvents(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & EventFilterOptions & { actor?: string; from?: string; to?: string; oldestFirst?: boolean }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const query = {
    ...typeQuery(options),
    ...(options.actor !== undefined ? { actor: options.actor } : {}),
    ...(options.from !== undefined ? { from: options.from } : {}),
    ...(options.to !== undefined ? { to: options.to } : {}),
    ...(options.oldestFirst ? { order: 'asc' as const } : {}),
  };
  await listCommand('events', options, (q) => ok(s.api.GET('/orgs/{org}/events', { params: { path: { org }, query: { ...query, ...q } } })), columns);
}

/** Follows the organization's events over the WebSocket API until Ctrl-C (exit 0) or until the platform ends it (exit 1, with its reason). */
export async function tailEvents(env: NodeJS.ProcessEnv, _args: unknown[], options: EventFilterOptions & { json?: boolean }): Promise<void> {
  const { s, org } = await orgSession(env, options);
  const query = new URLSearchParams(typeQuery(options)).toString();
  const url = `${s.url.replace(/^http/, 'ws')}/ws/orgs/${encodeURIComponent(org)}/events${query ? `?${query}` : ''}`;
  await follow(url, s.token, s.url, {
    opened: `following the events of ${org}${options.type?.length ? ` (${options.type.join(',')})` : ''}${options.device ? ` of device ${options.device}` : ''}; Ctrl-C to stop`,
    what: 'the event stream',
    onFrame: (data) => {
      if (options.json) return void process.stdout.write(data.toString('utf8') + '\n');
      // one line an event, as it comes: the columns of `events list`, without a header
      const e = JSON.parse(data.toString('utf8')) as FleetEvent;
      process.stdout.write(columns.map(([, value]) => String(value(e))).join('  ') + '\n');
    },
  });
}
