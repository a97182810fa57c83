// A client command's connection to a running platform: the URL and token (FLEETWIRE_URL and
// FLEETWIRE_TOKEN, else what `fleetwire login` stored), the generated API client, and the
// organization the command works in.
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from '../api-types.js';
import { readCredentials, withCredentialsLock, writeCredentials, type Credentials } from './credentials.js';
import { CliError, Refusal, UsageError, type Problem } from './errors.js';

export type Api = Client<paths>;

/** An access token this close to its expiry is refreshed before use, so that it does not expire on the way. */
const refreshMarginMs = 10_000;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Session {
  api: Api;
  url: string;
  /** The token sent as `Authorization: Bearer`, if any. */
  token: string | undefined;
  env: NodeJS.ProcessEnv;
  /** The stored login for this URL (absent with FLEETWIRE_TOKEN for another platform, or before any login). */
  stored: Credentials | undefined;
}

/** `http://host:8080/` and `http://host:8080` are the same platform. */
export function normaliseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${JSON.stringify(url)} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`${url}: the platform's URL starts with http:// or https://`);
  return parsed.href.replace(/\/+$/, '');
}

/** fetch, with a platform that cannot be reached reported as one line instead of `fetch failed`. */
function reachingFetch(url: string): typeof fetch {
  return async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the platform at ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
  };
}

export function apiClient(url: string, token?: string): Api {
  return createClient<paths>({ baseUrl: url, fetch: reachingFetch(url), headers: token ? { authorization: `Bearer ${token}` } : {} });
}

/** The problem in a refusal; a body that is not one (a proxy's page) still gives the status. */
export function problemOf(response: Response, error: unknown): Problem {
  const body = (typeof error === 'object' && error !== null ? error : {}) as Partial<Problem>;
  return {
    status: response.status,
    title: typeof body.title === 'string' ? body.title : `HTTP ${response.status} ${response.statusText}`.trim(),
    ...(typeof body.code === 'string' ? { code: body.code } : {}),
    ...(typeof body.detail === 'string' ? { detail: body.detail } : typeof error === 'string' && error ? { detail: error.slice(0, 300) } : {}),
  };
}

/** The data of an answer, or the refusal thrown. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new Refusal(problemOf(response, error));
  return data as T;
}

/**
 * Stores the token pair of a login or a refresh. The CLI never asks for the refresh cookie (that is
 * the console's), so the platform puts the refresh token in the body; its absence is a platform
 * this CLI does not understand.
 */
export function storeTokens(env: NodeJS.ProcessEnv, url: string, pair: { access_token: string; expires_in: number; refresh_token?: string | undefined; refresh_expires_in: number }, org?: Credentials['org']): Credentials {
  if (pair.refresh_token === undefined) throw new CliError(`${url} answered without a refresh token`);
  const now = Date.now();
  const c: Credentials = {
    url,
    accessToken: pair.access_token,
    accessExpiresAt: now + pair.expires_in * 1000,
    refreshToken: pair.refresh_token,
    refreshExpiresAt: now + pair.refresh_expires_in * 1000,
    ...(org ? { org } : {}),
  };
  writeCredentials(env, c);
  return c;
}

function fresh(c: Credentials): boolean {
  return c.accessExpiresAt - refreshMarginMs > Date.now();
}

/** The stored access token, refreshed first when it has expired (or is about to). */
async function freshToken(env: NodeJS.ProcessEnv, c: Credentials): Promise<string> {
  if (fresh(c)) return c.accessToken;
  return withCredentialsLock(env, async () => {
    // another command may have refreshed it while this one waited for the lock
    const latest = readCredentials(env);
    if (latest && latest.url === c.url && fresh(latest)) return latest.accessToken;
    const current = latest && latest.url === c.url ? latest : c;
    if (current.refreshExpiresAt <= Date.now()) throw new CliError(`the session at ${c.url} has expired: run fleetwire login`);
    const { data, error, response } = await apiClient(c.url).POST('/auth/refresh', { body: { refresh_token: current.refreshToken } });
    if (!response.ok || !data) throw new CliError(`the session at ${c.url} has ended (${problemOf(response, error).code ?? response.status}): run fleetwire login`);
    return storeTokens(env, c.url, data, current.org).accessToken;
  });
}

/** Opens the session a command runs in: FLEETWIRE_URL and FLEETWIRE_TOKEN, else the stored login (refreshed when due). */
export async function openSession(env: NodeJS.ProcessEnv): Promise<Session> {
  const creds = readCredentials(env);
  const fromEnv = env.FLEETWIRE_URL ? normaliseUrl(env.FLEETWIRE_URL) : undefined;
  const url = fromEnv ?? creds?.url;
  if (url === undefined) throw new CliError('not logged in: run fleetwire login --url <the platform\'s URL>, or set FLEETWIRE_URL and FLEETWIRE_TOKEN');
  // a login is never sent to another platform than the one it was made on
  const stored = creds && creds.url === url ? creds : undefined;
  const token = env.FLEETWIRE_TOKEN || (stored ? await freshToken(env, stored) : undefined);
  if (token === undefined) throw new CliError(`not logged in to ${url}: run fleetwire login`);
  return { api: apiClient(url, token), url, token, env, stored };
}

/** An organization named by id or name; a name must match exactly one the user can see. */
export async function findOrg(s: Session, idOrName: string): Promise<{ id: string; name: string }> {
  if (uuid.test(idOrName)) {
    const org = await ok(s.api.GET('/orgs/{org}', { params: { path: { org: idOrName } } }));
    return { id: org.id, name: org.name };
  }
  const page = await ok(s.api.GET('/orgs', { params: { query: { name: idOrName, limit: 1000 } } }));
  const exact = page.orgs.filter((o) => o.name === idOrName);
  if (exact.length === 0) throw new CliError(`no organization named ${JSON.stringify(idOrName)} (fleetwire orgs list shows those you can see)`);
  if (exact.length > 1) throw new CliError(`${exact.length} organizations are named ${JSON.stringify(idOrName)}: name one by its id`);
  return { id: exact[0]!.id, name: exact[0]!.name };
}

/** The organization a command works in: `--org`, else the one chosen with `fleetwire orgs use`. */
export async function orgOf(s: Session, option: string | undefined): Promise<string> {
  // an id goes as it is: the platform checks it, and a token limited to other actions than org:read may still use it
  if (option !== undefined) return uuid.test(option) ? option : (await findOrg(s, option)).id;
  if (s.stored?.org) return s.stored.org.id;
  throw new UsageError('no organization: pass --org <id|name>, or choose one with fleetwire orgs use <id|name>');
}

/** The session and the organization of a command that works in one (`--org`, else the chosen one). */
export async function orgSession(env: NodeJS.ProcessEnv, options: { org?: string }): Promise<{ s: Session; org: string }> {
  const s = await openSession(env);
  return { s, org: await orgOf(s, options.org) };
}
