// `fleetwire orgs …` and `fleetwire members …`.
import { writeCredentials } from '../credentials.js';
import { CliError } from '../errors.js';
import { done, show, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { findOrg, ok, openSession, orgOf } from '../session.js';

type Role = 'owner' | 'admin' | 'operator' | 'viewer';
type OrgOptions = OutputOptions & { org?: string };

export async function listOrgs(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { name?: string }): Promise<void> {
  const s = await openSession(env);
  const chosen = s.stored?.org?.id;
  await listCommand('orgs', options, (q) => ok(s.api.GET('/orgs', { params: { query: { ...q, ...(options.name ? { name: options.name } : {}) } } })), [
    ['id', (o) => o.id],
    ['name', (o) => (o.id === chosen ? `${o.name} *` : o.name)],
    ['role', (o) => o.role],
    ['created', (o) => o.created_at],
  ]);
}

export async function createOrg(env: NodeJS.ProcessEnv, [name]: [string], options: OutputOptions): Promise<void> {
  const s = await openSession(env);
  show(options, await ok(s.api.POST('/orgs', { body: { name } })));
}

export async function showOrg(env: NodeJS.ProcessEnv, [org]: [string], options: OutputOptions): Promise<void> {
  const s = await openSession(env);
  const { id } = await findOrg(s, org);
  show(options, await ok(s.api.GET('/orgs/{org}', { params: { path: { org: id } } })));
}

export async function renameOrg(env: NodeJS.ProcessEnv, [org, name]: [string, string], options: OutputOptions): Promise<void> {
  const s = await openSession(env);
  const { id } = await findOrg(s, org);
  const renamed = await ok(s.api.PATCH('/orgs/{org}', { params: { path: { org: id } }, body: { name } }));
  // the chosen organization is remembered with its name, for whoami: keep it current
  if (s.stored?.org?.id === id) writeCredentials(env, { ...s.stored, org: { id, name: renamed.name } });
  show(options, renamed);
}

export async function deleteOrg(env: NodeJS.ProcessEnv, [org]: [string], options: OutputOptions): Promise<void> {
  const s = await openSession(env);
  const { id, name } = await findOrg(s, org);
  await ok(s.api.DELETE('/orgs/{org}', { params: { path: { org: id } } }));
  done(options, `deleted organization ${name} (${id})`);
}

/** Remembers the organization with the login, after checking that the user can see it. */
export async function useOrg(env: NodeJS.ProcessEnv, [org]: [string]): Promise<void> {
  const s = await openSession(env);
  if (s.stored === undefined) throw new CliError(`only a stored login can remember an organization: run fleetwire login (${env.FLEETWIRE_TOKEN ? 'with FLEETWIRE_TOKEN, pass --org to each command' : 'to ' + s.url})`);
  const found = await findOrg(s, org);
  writeCredentials(env, { ...s.stored, org: found });
  process.stdout.write(`working in ${found.name} (${found.id})\n`);
}

export async function listMembers(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions & { org?: string }): Promise<void> {
  const s = await openSession(env);
  const org = await orgOf(s, options.org);
  await listCommand('members', options, (q) => ok(s.api.GET('/orgs/{org}/members', { params: { path: { org }, query: q } })), [
    ['user id', (m) => m.user_id],
    ['email', (m) => m.email],
    ['name', (m) => m.name],
    ['role', (m) => m.role],
  ]);
}

export async function addMember(env: NodeJS.ProcessEnv, [email]: [string], options: OrgOptions & { role: Role }): Promise<void> {
  const s = await openSession(env);
  const org = await orgOf(s, options.org);
  show(options, (await ok(s.api.POST('/orgs/{org}/members', { params: { path: { org } }, body: { email, role: options.role } }))) as Record<string, unknown>);
}

export async function setMemberRole(env: NodeJS.ProcessEnv, [user, role]: [string, string], options: OrgOptions): Promise<void> {
  const s = await openSession(env);
  const org = await orgOf(s, options.org);
  show(options, await ok(s.api.PATCH('/orgs/{org}/members/{user_id}', { params: { path: { org, user_id: user } }, body: { role: role as Role } })));
}

export async function removeMember(env: NodeJS.ProcessEnv, [user]: [string], options: OrgOptions): Promise<void> {
  const s = await openSession(env);
  const org = await orgOf(s, options.org);
  await ok(s.api.DELETE('/orgs/{org}/members/{user_id}', { params: { path: { org, user_id: user } } }));
  done(options, `removed ${user}`);
}
