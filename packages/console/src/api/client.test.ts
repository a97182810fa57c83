// The session as the API client keeps it, against a stand-in for the platform (fetch replaced):
// run with `npm test -w @fleetwire/console` (Node runs the TypeScript as it is).
import { after, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';

type Handler = (req: Request, body: unknown) => Response | Promise<Response>;
const routes = new Map<string, Handler>();
const seen: { path: string; authorization: string | null; body: unknown }[] = [];
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': status < 400 ? 'application/json' : 'application/problem+json' } });
const pair = (token: string, expiresIn = 900) => ({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, refresh_expires_in: 86_400 });
const refused = (code: string) => json(401, { type: 'about:blank', title: 'refused', status: 401, code, detail: `refused: ${code}`, instance: '/', request_id: 'r' });

const realFetch = globalThis.fetch;
globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const req = input instanceof Request ? input : new Request(input, init);
  const path = new URL(req.url).pathname;
  const text = await req.clone().text();
  const body = text ? (JSON.parse(text) as unknown) : undefined;
  seen.push({ path, authorization: req.headers.get('authorization'), body });
  const handler = routes.get(`${req.method} ${path}`);
  return handler ? handler(req, body) : json(404, { code: 'route.not_found' });
}) as typeof fetch;
Object.defineProperty(globalThis, 'location', { value: { origin: 'http://console.test' }, configurable: true });
after(() => {
  globalThis.fetch = realFetch;
});

// imported once the stand-in is in place: the client takes fetch and the origin when it is made
const client = await import('./client.ts');

/** GET /users/me answers 200 to `valid` tokens, 401 auth.token_invalid to others. */
let valid = new Set<string>();
let refreshes = 0;
let nextToken = 1;
beforeEach(() => {
  seen.length = 0;
  refreshes = 0;
  routes.clear();
  routes.set('GET /users/me', (req) => (valid.has(String(req.headers.get('authorization')).replace('Bearer ', '')) ? json(200, { id: 'u', email: 'a@example.org' }) : refused('auth.token_invalid')));
  routes.set('POST /auth/refresh', () => {
    refreshes += 1;
    const token = `access-${++nextToken}`;
    valid = new Set([token]);
    return json(200, pair(token));
  });
});

test('sign-in asks for the refresh cookie and keeps the access token for the next requests', async () => {
  routes.set('POST /auth/token', () => {
    valid = new Set(['access-1']);
    return json(200, pair('access-1'));
  });
  assert.equal(await client.signIn('a@example.org', 'pw'), undefined);
  assert.deepEqual(seen[0]!.body, { email: 'a@example.org', password: 'pw', refresh_cookie: true });
  const { data } = await client.api.GET('/users/me');
  assert.equal(data?.email, 'a@example.org');
  assert.equal(seen[1]!.authorization, 'Bearer access-1');
  assert.equal(client.currentToken(), 'access-1');
});

test('a refused sign-in answers the problem and keeps no token', async () => {
  routes.set('POST /auth/token', () => refused('auth.invalid_credentials'));
  await client.signOut();
  const problem = await client.signIn('a@example.org', 'wrong');
  assert.equal(client.problemText(problem), 'refused: auth.invalid_credentials');
  assert.equal(client.currentToken(), undefined);
});

test('an access token refused as expired is renewed with the cookie and the request repeated', async () => {
  valid = new Set(); // the token the client holds has expired
  routes.set('POST /auth/token', () => json(200, pair('stale')));
  await client.signIn('a@example.org', 'pw');
  seen.length = 0;
  const { data, error } = await client.api.GET('/users/me');
  assert.equal(error, undefined);
  assert.equal(data?.email, 'a@example.org');
  assert.deepEqual(seen.map((s) => s.path), ['/users/me', '/auth/refresh', '/users/me']);
  assert.deepEqual(seen[1]!.body, {}, 'the refresh token is the cookie, not in the body');
  assert.equal(seen[2]!.authorization, `Bearer ${client.currentToken()}`);
});

test('a token about to expire is renewed before the request, once for requests made together', async () => {
  routes.set('POST /auth/token', () => {
    valid = new Set(['short']);
    return json(200, pair('short', 0)); // expires now
  });
  await client.signIn('a@example.org', 'pw');
  seen.length = 0;
  const answers = await Promise.all([client.api.GET('/users/me'), client.api.GET('/users/me'), client.api.GET('/users/me')]);
  assert.deepEqual(answers.map((a) => a.response.status), [200, 200, 200]);
  assert.equal(refreshes, 1);
  assert.equal(seen.filter((s) => s.path === '/users/me' && s.authorization !== `Bearer ${client.currentToken()}`).length, 0, 'no request went out with the old token');
});

test('when the cookie is refused too, the session is over: the listeners are told and the 401 stands', async () => {
  valid = new Set();
  routes.set('POST /auth/token', () => json(200, pair('stale')));
  routes.set('POST /auth/refresh', () => refused('auth.refresh_token_invalid'));
  await client.signIn('a@example.org', 'pw');
  let told = 0;
  const stop = client.onSessionExpired(() => (told += 1));
  const { response } = await client.api.GET('/users/me');
  stop();
  assert.equal(response.status, 401);
  assert.equal(told, 1);
  assert.equal(client.currentToken(), undefined);
});

test('sign-out ends the session on the platform and forgets the access token', async () => {
  routes.set('POST /auth/token', () => json(200, pair('access-x')));
  routes.set('POST /auth/logout', () => new Response(null, { status: 204 }));
  await client.signIn('a@example.org', 'pw');
  await client.signOut();
  assert.deepEqual(seen.at(-1), { path: '/auth/logout', authorization: null, body: {} });
  assert.equal(client.currentToken(), undefined);
});
