import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPassword, type TestPlatform } from '../../test/helpers/platform.js';
import { assertProblem } from '../../test/helpers/problem.js';
import { anotherHandle, openTestDatabase } from '../../test/helpers/database.js';
import { loadConfig } from '../core/config.js';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { createPlatform, type Platform } from '../platform.js';
import { buildApp } from '../http/app.js';
import { MemoryBus } from '../messaging/memory-bus.js';
import type { Database } from '../db/index.js';

type Pair = { access_token: string; refresh_token: string };

async function login(t: { request: TestPlatform['request'] }, email: string, password = testPassword): Promise<Pair> {
  const res = await t.request('POST', '/auth/token', { body: { email, password } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

// The user and the role each API request reads are kept briefly (auth/principals.ts); every change
// made in one process is seen by the others on the bus at once, and by the rest once the entry expires.
describe('users and roles cached per process, changed across processes', () => {
  const cacheMs = 1000;
  const key = randomBytes(32);
  const clock = new ManualClock(Date.now());
  let cleanup: () => Promise<void>;
  let db: Database;
  const opened: { close(): Promise<void> }[] = [];
  const dirs: string[] = [];

  before(async () => {
    const t = await openTestDatabase();
    db = t.db;
    cleanup = t.cleanup;
  });
  after(async () => {
    for (const o of opened.reverse()) await o.close();
    await cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function node(bus: MemoryBus): Promise<{ platform: Platform; request: TestPlatform['request'] }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-data-'));
    dirs.push(dataDir);
    const config = loadConfig({}, { dataDir, logLevel: 'silent', sessionCheckCache: cacheMs });
    const handle = await anotherHandle(db, 2);
    const platform = await createPlatform(config, { db: handle, clock, log: createLogger('silent'), key, bus, writer: false });
    const app = await buildApp(platform);
    await app.ready();
    opened.push({ close: async () => (await app.close(), await platform.close(), await handle.close()) });
    return { platform, request: (method, url, opts = {}) => app.inject({ method, url, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {}, ...(opts.body !== undefined ? { payload: opts.body as object } : {}) }) };
  }

  /** An organization owned by a new user, with a second user as a member of `role`. */
  async function orgWithMember(a: Awaited<ReturnType<typeof node>>, tag: string, role: string): Promise<{ org: string; owner: Pair; member: Pair; memberId: string }> {
    await a.platform.users.create({ email: `owner-${tag}@example.com`, password: testPassword });
    const m = await a.platform.users.create({ email: `member-${tag}@example.com`, password: testPassword });
    const owner = await login(a, `owner-${tag}@example.com`);
    const member = await login(a, `member-${tag}@example.com`);
    const org = (await a.request('POST', '/orgs', { token: owner.access_token, body: { name: tag } })).json().id as string;
    const inv = await a.request('POST', `/orgs/${org}/members`, { token: owner.access_token, body: { email: `member-${tag}@example.com`, role } });
    assert.equal(inv.statusCode, 202, inv.body);
    assert.equal((await a.request('POST', `/users/me/invitations/${inv.json().id}/accept`, { token: member.access_token })).statusCode, 200);
    return { org, owner, member, memberId: m.id };
  }

  test('a member removed, or given a lesser role, in one process is refused by another at once', async () => {
    const bus = new MemoryBus();
    opened.push({ close: () => bus.close() });
    const a = await node(bus);
    const b = await node(bus);
    const { org, owner, member, memberId } = await orgWithMember(a, 'roles', 'admin');
    // B reads (and keeps) the member's user and role
    assert.equal((await b.request('POST', `/orgs/${org}/channels`, { token: member.access_token, body: { name: 'c1' } })).statusCode, 201);
    assert.equal((await a.request('PATCH', `/orgs/${org}/members/${memberId}`, { token: owner.access_token, body: { role: 'viewer' } })).statusCode, 200);
    assertProblem(await b.request('POST', `/orgs/${org}/channels`, { token: member.access_token, body: { name: 'c2' } }), 403, 'auth.forbidden');
    assert.equal((await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token })).statusCode, 200, 'a viewer still reads');
    assert.equal((await a.request('DELETE', `/orgs/${org}/members/${memberId}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
  });

  test('a deleted organization and a demoted platform admin are refused by another process at once', async () => {
    const bus = new MemoryBus();
    opened.push({ close: () => bus.close() });
    const a = await node(bus);
    const b = await node(bus);
    const { org, owner } = await orgWithMember(a, 'gone', 'viewer');
    assert.equal((await b.request('GET', `/orgs/${org}`, { token: owner.access_token })).statusCode, 200);
    assert.equal((await a.request('DELETE', `/orgs/${org}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await b.request('GET', `/orgs/${org}`, { token: owner.access_token }), 404, 'org.not_found');

    const admin = await a.platform.users.create({ email: 'demoted@example.com', password: testPassword, role: 'admin' });
    await a.platform.users.create({ email: 'other-admin@example.com', password: testPassword, role: 'admin' });
    const pair = await login(a, 'demoted@example.com');
    const other = await login(a, 'other-admin@example.com');
    assert.equal((await b.request('GET', '/users', { token: pair.access_token })).statusCode, 200, 'an admin lists users; B keeps the user');
    assert.equal((await a.request('PATCH', `/users/${admin.id}`, { token: other.access_token, body: { role: 'user' } })).statusCode, 200);
    assert.equal((await b.request('GET', '/users', { token: pair.access_token })).statusCode, 403, 'no longer an admin in B either');
  });

  test('a process that missed the broadcast refuses the removed member once its entry expires', async () => {
    const buses = [new MemoryBus(), new MemoryBus()]; // one each: A's broadcasts never reach B
    for (const bus of buses) opened.push({ close: () => bus.close() });
    const a = await node(buses[0]!);
    const b = await node(buses[1]!);
    const { org, owner, member, memberId } = await orgWithMember(a, 'expiry', 'viewer');
    assert.equal((await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token })).statusCode, 200);
    assert.equal((await a.request('DELETE', `/orgs/${org}/members/${memberId}`, { token: owner.access_token })).statusCode, 204);
    assertProblem(await a.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
    clock.advance(cacheMs + 1);
    assertProblem(await b.request('GET', `/orgs/${org}/channels`, { token: member.access_token }), 404, 'org.not_found');
  });
});
