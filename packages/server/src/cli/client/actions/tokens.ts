// `fleetwire tokens …`: personal access tokens, for scripts and CI (FLEETWIRE_TOKEN).
import type { paths } from '../../api-types.js';
import { done, note, show, type OutputOptions } from '../output.js';
import { listCommand, type PageOptions } from '../paging.js';
import { ok, openSession, orgOf } from '../session.js';

/** 30 days, in seconds. */
const defaultLifetime = 30 * 24 * 3600;

export async function listTokens(env: NodeJS.ProcessEnv, _args: unknown[], options: PageOptions): Promise<void> {
  const s = await openSession(env);
  await listCommand('tokens', options, (q) => ok(s.api.GET('/users/me/tokens', { params: { query: q } })), [
    ['id', (t) => t.id],
    ['name', (t) => t.name],
    ['org', (t) => t.org_id],
    ['actions', (t) => t.actions],
    ['expires', (t) => t.expires_at],
    ['revoked', (t) => t.revoked_at],
  ]);
}


type Action = NonNullable<paths["/users/me/tokens"]["post"]["requestBody"]>["content"]["application/json"]["actions"][number];

export async function createToken(env: NodeJS.ProcessEnv, [name]: [string], options: OutputOptions & { org?: string; actions: string[]; expiresIn?: number }): Promise<void> {
  const s = await openSession(env);
  const org = await orgOf(s, options.org);
  const created = await ok(s.api.POST('/users/me/tokens', { body: { name, org_id: org, actions: options.actions as Action[], expires_in: options.expiresIn ?? defaultLifetime } }));
  show(options, created);
  if (!options.json) note('the token is shown only this once: keep it now (FLEETWIRE_TOKEN=<token> fleetwire …)');
}

export async function revokeToken(env: NodeJS.ProcessEnv, [id]: [string], options: OutputOptions): Promise<void> {
  const s = await openSession(env);
  await ok(s.api.DELETE('/users/me/tokens/{id}', { params: { path: { id } } }));
  done(options, `revoked token ${id}`);
}
