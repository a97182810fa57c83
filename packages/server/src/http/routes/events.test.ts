import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../../../test/helpers/platform.js';
import { eventually } from '../../../test/helpers/eventually.js';
import { assertProblem } from '../../../test/helpers/problem.js';
import { addMember } from '../../../test/helpers/members.js';
import { certificateAuthority, deviceRequest } from '../../../test/helpers/tls.js';
import { uuidv7 } from '../../core/ids.js';
import type { FleetEvent } from '../../events/index.js';

type Method = NonNullable<InjectOptions['method']>;
type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

/** The platform and every route its app registers (as test/tenant-isolation.test.ts records them). */
async function startRecordingRoutes(): Promise<{ t: TestPlatform; routes: { method: Method; url: string }[] }> {
  const routes: { method: Method; url: string }[] = [];
  const onCreated = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) routes.push({ method: method as Method, url: route.url });
    });
  };
  diagnostics.subscribe('fastify.initialization', onCreated);
  try {
    return { t: await startTestPlatform(), routes };
  } finally {
    diagnostics.unsubscribe('fastify.initialization', onCreated);
  }
}

interface Ws {
  ws: WebSocket;
  events: FleetEvent[];
  closed: Promise<{ code: number; reason: string }>;
}

describe('fleet events over HTTP and WebSocket', () => {
  let t: TestPlatform;
  let routes: { method: Method; url: string }[];
  let base: string;
  let owner: TestUser;
  let viewer: TestUser;
  let outsider: TestUser;
  let org: string;
  const sockets: WebSocket[] = [];

  const call = async (user: TestUser, method: Method, url: string, body?: unknown) => {
    const res = await t.request(method, url, { token: user.token, body });
    assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };

  /** Opens an events socket; resolves once it is open (or with the refusal's status). */
  const open = (path: string, headers: Record<string, string> = {}): Promise<Ws | { status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base}${path}`, { headers });
      sockets.push(ws);
      const events: FleetEvent[] = [];
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
      ws.on('message', (data) => events.push(JSON.parse(data.toString()) as FleetEvent));
      ws.on('open', () => resolve({ ws, events, closed }));
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('error', (e) => reject(e));
    });
  const opened = async (path: string, headers: Record<string, string> = {}): Promise<Ws> => {
    const r = await open(path, headers);
    assert.ok('ws' in r, `refused: ${JSON.stringify(r)}`);
    return r;
  };

  before(async () => {
    ({ t, routes } = await startRecordingRoutes());
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    owner = await t.user('events-owner@example.com');
    viewer = await t.user('events-viewer@example.com');
    outsider = await t.user('events-outsider@example.com');
    org = (await call(owner, 'POST', '/orgs', { name: 'Events' })).json().id;
    await addMember(t, org, owner.token, viewer, 'viewer');
    await call(outsider, 'POST', '/orgs', { name: 'Elsewhere' });
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await t.close();
  });

  test('every successful change a user makes under an organization is an event with the user as actor', async () => {
    const seen: FleetEvent[] = [];
    const stop = t.platform.events.onEvent((e) => seen.push(e));
    // a second organization of the owner's, with one of everything, to change every way there is
    const o = (await call(owner, 'POST', '/orgs', { name: 'Audited' })).json().id as string;
    const at = (path: string) => `/orgs/${o}${path}`;
    const member = await t.user('audited-member@example.com');
    await addMember(t, o, owner.token, member, 'operator');
    const device = (await call(owner, 'POST', at('/devices'), { name: 'd' })).json().id as string;
    const channel = (await call(owner, 'POST', at('/channels'), { name: 'c' })).json().id as string;
    const group = (await call(owner, 'POST', at('/groups'), { name: 'g' })).json().id as string;
    const key = deviceRequest('/CN=AUD-1');
    const registration = (await call(owner, 'POST', at('/registrations'), { serial: 'AUD-1', public_key: key.publicKey })).json().id as string;
    const enrolled = await t.request('POST', '/enrol', { body: { csr: key.csr } });
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    const certificate = enrolled.json().serial as string;
    const token = (await call(owner, 'POST', at('/enrolment-tokens'), {})).json().id as string;
    const makerCa = readFileSync(certificateAuthority([]).ca, 'utf8');
    const maker = (await call(owner, 'POST', at('/manufacturer-cas'), { name: 'm', certificate: makerCa, serials: ['AUD-*'], channel_ids: [channel] })).json().id as string;
    const invitation = (await call(owner, 'POST', at('/members'), { email: 'invited@example.com', role: 'viewer' })).json().id as string;
    const deadLetter = uuidv7();
    await t.platform.deadLetters.add({ id: deadLetter, org: o, channel, subtopic: '', publisher: device, protocol: 'http', contentType: 'application/json', payload: Buffer.from('{}'), receivedAt: Date.now() }, 'for the test', Date.now());

    const ids: Record<string, string> = { devices: device, channels: channel, groups: group, registrations: registration, 'enrolment-tokens': token, 'manufacturer-cas': maker, invitations: invitation, 'dead-letters': deadLetter };
    const connection = { device_ids: [device], channel_ids: [channel], types: ['publish'] };
    const bodies: Record<string, unknown> = {
      'PATCH /orgs/:org': { name: 'Audited again' },
      'POST /orgs/:org/members': { email: 'another@example.com', role: 'viewer' },
      'PATCH /orgs/:org/members/:user_id': { role: 'viewer' },
      'POST /orgs/:org/devices': { name: 'd2' },
      'POST /orgs/:org/devices/bulk': { devices: [{ name: 'b1' }, { name: 'b2' }] },
      'PATCH /orgs/:org/devices/:id': { name: 'renamed', status: 'disabled' },
      'POST /orgs/:org/channels': { name: 'c2' },
      'POST /orgs/:org/channels/bulk': { channels: [{ name: 'cb' }] },
      'PATCH /orgs/:org/channels/:id': { name: 'renamed' },
      'POST /orgs/:org/groups': { name: 'g2' },
      'PATCH /orgs/:org/groups/:id': { name: 'renamed' },
      'POST /orgs/:org/groups/:id/devices': { device_ids: [device] },
      'DELETE /orgs/:org/groups/:id/devices': { device_ids: [device] },
      'POST /orgs/:org/connections': connection,
      'DELETE /orgs/:org/connections': connection,
      'POST /orgs/:org/registrations': { serial: 'AUD-2' },
      'POST /orgs/:org/registrations/bulk': { registrations: [{ serial: 'AUD-3' }] },
      'POST /orgs/:org/enrolment-tokens': {},
      'POST /orgs/:org/certificates/:serial/revoke': { reason: 'keyCompromise' },
      'POST /orgs/:org/manufacturer-cas': { name: 'm2', certificate: readFileSync(certificateAuthority([]).ca, 'utf8'), serials: ['X-*'], channel_ids: [channel] },
      'PATCH /orgs/:org/manufacturer-cas/:id': { serials: ['*'] },
      'PATCH /orgs/:org/devices/:id/twin': { desired: { audited: true } },
      'PATCH /orgs/:org/devices/:id/twins/:name': { desired: { audited: true } },
      'PUT /orgs/:org/twin-settings': { max_section_bytes: 32768, max_depth: 10 },
    };
    // changes first, the revocation before the registration's transitions (reset revokes too), deletions last
    const rank = (r: { method: string; url: string }) => (r.url.endsWith('/revoke') && r.url.includes('certificates') ? -1 : r.url === '/orgs/:org' && r.method === 'DELETE' ? 2 : r.method === 'DELETE' ? (r.url === '/orgs/:org/dead-letters/:id' ? 0.4 : r.url.endsWith('/:id') || r.url.endsWith('/:user_id') ? 1 : 0.5) : 0);
    const mutating = routes.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && r.url.startsWith('/orgs/:org')).sort((a, b) => rank(a) - rank(b));
    assert.ok(mutating.length > 30, `only ${mutating.length} mutating organization routes found`);
    const missing: string[] = [];
    for (const route of mutating) {
      const parts = route.url.split('/');
      const url = parts.map((p, i) => (p === ':org' ? o : p === ':user_id' ? member.id : p === ':serial' ? certificate : p === ':name' ? 'config' : p.startsWith(':') ? ids[parts[i - 1]!] ?? uuidv7() : p)).join('/');
      const key = `${route.method} ${route.url}`;
      const body = key in bodies ? bodies[key] : ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined;
      const res = await t.request(route.method, url, { token: owner.token, body });
      assert.ok(res.statusCode < 300, `${key}: ${res.statusCode} ${res.body}`);
      const requestId = res.headers['x-request-id'];
      const byService = route.url === '/orgs/:org/certificates/:serial/revoke';
      // twins/service.ts records its changes itself (twin.updated, the twin's new version)
      const twinName = route.url.endsWith('/twin') ? 'default' : route.url.endsWith('/twins/:name') ? 'config' : undefined;
      const twinVersion = twinName ? (res.json() as { version: number }).version : undefined;
      const mine = (e: FleetEvent) => e.org_id === o && (byService ? e.type === 'certificate.revoked' && e.data.serial === certificate : twinName ? e.type === 'twin.updated' && e.data.twin === twinName && e.data.version === twinVersion : e.data.request_id === requestId);
      try {
        await eventually(() => assert.ok(seen.some(mine)), 2000);
      } catch {
        missing.push(key);
        continue;
      }
      const event = seen.find(mine)!;
      assert.deepEqual(event.actor, { kind: 'user', id: owner.id }, key);
      if (!byService && !twinName) assert.equal(event.data.route, route.url);
    }
    stop();
    assert.deepEqual(missing, []);

    const types = (path: string, method: Method) => seen.filter((e) => e.org_id === o && e.data.route === path && e.data.method === method).map((e) => e.type);
    assert.deepEqual(types('/orgs/:org/devices/:id', 'PATCH'), ['device.updated', 'device.disabled']);
    assert.deepEqual(types('/orgs/:org/devices/bulk', 'POST'), ['device.created', 'device.created'], 'one event per device made in bulk');
    assert.deepEqual(types('/orgs/:org/devices/:id/enable', 'POST'), ['device.enabled']);
    const created = seen.find((e) => e.org_id === o && e.type === 'device.created' && e.data.route === '/orgs/:org/devices')!;
    assert.equal(created.subject.kind, 'device');
    const invited = seen.find((e) => e.org_id === o && e.type === 'invitation.created' && e.data.status === 202)!;
    assert.equal(invited.subject.kind, 'invitation');
    assert.ok(!JSON.stringify(seen).includes('"secret"'), 'no secret is ever in an event');
    assert.equal(seen.find((e) => e.org_id === o && e.type === 'certificate.revoked')!.subject.id, enrolled.json().device_id);
    assert.ok(seen.some((e) => e.org_id === o && e.type === 'device.enrolled' && e.subject.id === enrolled.json().device_id && e.actor.kind === 'device'));
    assert.ok(seen.some((e) => e.org_id === o && e.type === 'org.deleted'));
  });

  test("accepting or declining an invitation is an event of the inviting organization", async () => {
    const joiner = await t.user('events-joiner@example.com');
    const decliner = await t.user('events-decliner@example.com');
    for (const u of [joiner, decliner]) await call(owner, 'POST', `/orgs/${org}/members`, { email: u.email, role: 'viewer' });
    const invitationOf = async (u: TestUser) => (await call(u, 'GET', '/users/me/invitations')).json().invitations[0].id as string;
    const declined = await invitationOf(decliner);
    await call(joiner, 'POST', `/users/me/invitations/${await invitationOf(joiner)}/accept`);
    await call(decliner, 'POST', `/users/me/invitations/${declined}/decline`);
    const added = (await call(owner, 'GET', `/orgs/${org}/events?type=member.added`)).json().events[0] as FleetEvent;
    assert.deepEqual([added.actor, added.subject], [{ kind: 'user', id: joiner.id }, { kind: 'user', id: joiner.id }]);
    const gone = (await call(owner, 'GET', `/orgs/${org}/events?type=invitation.deleted&actor=${decliner.id}`)).json().events as FleetEvent[];
    assert.deepEqual(gone.map((e) => e.subject), [{ kind: 'invitation', id: declined }]);
  });

  test('refused and reading calls record nothing', async () => {
    const before = (await call(owner, 'GET', `/orgs/${org}/events`)).json().total;
    assertProblem(await t.request('PATCH', `/orgs/${org}/devices/${uuidv7()}`, { token: owner.token, body: { name: 'x' } }), 404, 'device.not_found');
    assertProblem(await t.request('POST', `/orgs/${org}/devices`, { token: viewer.token, body: { name: 'x' } }), 403, 'auth.forbidden');
    await call(owner, 'GET', `/orgs/${org}/devices`);
    assert.equal((await call(owner, 'GET', `/orgs/${org}/events`)).json().total, before);
  });

  test('events are listed with filters and paging; viewers may read them', async () => {
    const d = (await call(owner, 'POST', `/orgs/${org}/devices`, { name: 'listed' })).json().id as string;
    await call(owner, 'POST', `/orgs/${org}/devices/${d}/disable`);
    await call(owner, 'POST', `/orgs/${org}/channels`, { name: 'listed' });
    const list = async (query: string, user = viewer) => (await call(user, 'GET', `/orgs/${org}/events?${query}`)).json();
    const byDevice = await list(`device=${d}`);
    assert.deepEqual(byDevice.events.map((e: FleetEvent) => e.type), ['device.disabled', 'device.created']);
    assert.equal(byDevice.total, 2);
    assert.deepEqual((await list(`device=${d}&order=asc&limit=1`)).events.map((e: FleetEvent) => e.type), ['device.created']);
    assert.deepEqual((await list(`device=${d}&offset=1`)).events.map((e: FleetEvent) => e.type), ['device.created']);
    const prefixed = await list('type=device.*');
    assert.ok(prefixed.events.length >= 2 && prefixed.events.every((e: FleetEvent) => e.type.startsWith('device.')));
    assert.ok((await list('type=channel.created,org.created')).events.every((e: FleetEvent) => ['channel.created', 'org.created'].includes(e.type)));
    assert.equal((await list(`actor=${owner.id}&type=device.disabled`)).total, 1);
    assert.deepEqual((await list(`actor=${viewer.id}`)).events.map((e: FleetEvent) => e.type), ['member.added'], 'the viewer only joined');
    const first = byDevice.events[1] as FleetEvent;
    assert.equal((await list(`device=${d}&from=${encodeURIComponent(byDevice.events[0].time)}`)).total, byDevice.events[0].time === first.time ? 2 : 1);
    assert.equal((await list(`device=${d}&to=${encodeURIComponent(first.time)}`)).total, 0);
  });

  test('bad filters are 400, outsiders 404, tokens without events:read 403', async () => {
    for (const q of ['type=device', 'type=no.such', 'type=device.*.x', 'device=not-a-uuid', 'from=yesterday', 'limit=0', 'order=sideways']) {
      assertProblem(await t.request('GET', `/orgs/${org}/events?${q}`, { token: owner.token }), 400, 'request.invalid');
    }
    assertProblem(await t.request('GET', `/orgs/${org}/events`, { token: outsider.token }), 404, 'org.not_found');
    assertProblem(await t.request('GET', `/orgs/${org}/events`), 401, 'auth.required');
    const pat = (await call(owner, 'POST', '/users/me/tokens', { name: 'devices only', org_id: org, actions: ['devices:read'], expires_in: 3600 })).json().token as string;
    assertProblem(await t.request('GET', `/orgs/${org}/events`, { token: pat }), 403, 'auth.token_scope');
    assert.deepEqual(await open(`/ws/orgs/${org}/events?token=${pat}`).then((r) => ('status' in r ? r.status : 'open')), 403);
    assert.deepEqual(await open(`/ws/orgs/${org}/events`).then((r) => ('status' in r ? r.status : 'open')), 401);
    assert.deepEqual(await open(`/ws/orgs/${org}/events`, { authorization: `Bearer ${outsider.token}` }).then((r) => ('status' in r ? r.status : 'open')), 404);
    assert.deepEqual(await open(`/ws/orgs/${org}/events?type=bogus`, { authorization: `Bearer ${owner.token}` }).then((r) => ('status' in r ? r.status : 'open')), 400);
  });

  test('a WebSocket follows the events live, with type and device filters', async () => {
    const d = (await call(owner, 'POST', `/orgs/${org}/devices`, { name: 'watched' })).json().id as string;
    const all = await opened(`/ws/orgs/${org}/events`, { authorization: `Bearer ${viewer.token}` });
    const devices = await opened(`/ws/orgs/${org}/events?type=device.*&token=${viewer.token}`);
    const one = await opened(`/ws/orgs/${org}/events?device=${d}`, { authorization: `Bearer ${owner.token}` });
    await call(owner, 'POST', `/orgs/${org}/channels`, { name: 'live' });
    await call(owner, 'POST', `/orgs/${org}/devices/${d}/disable`);
    await call(owner, 'POST', `/orgs/${org}/devices`, { name: 'another' });
    await eventually(() => assert.equal(all.events.length, 3));
    assert.deepEqual(all.events.map((e) => e.type), ['channel.created', 'device.disabled', 'device.created']);
    await eventually(() => assert.deepEqual(devices.events.map((e) => e.type), ['device.disabled', 'device.created']));
    await eventually(() => assert.deepEqual(one.events.map((e) => `${e.type} ${e.subject.id}`), [`device.disabled ${d}`]));
    assert.equal(all.events[1]!.actor.id, owner.id);
    // and nothing of another organization
    await call(outsider, 'POST', '/orgs', { name: 'Elsewhere too' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(all.events.length, 3);
    for (const s of [all, devices, one]) s.ws.close();
  });

  test('a socket closes with 4403 when its user is removed from the organization', async () => {
    const user = await t.user('events-removed@example.com');
    await addMember(t, org, owner.token, user, 'viewer');
    const s = await opened(`/ws/orgs/${org}/events`, { authorization: `Bearer ${user.token}` });
    await call(owner, 'DELETE', `/orgs/${org}/members/${user.id}`);
    const closed = await s.closed;
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /^org\.not_found: access withdrawn/);
    assert.deepEqual(s.events.map((e) => e.type), ['member.removed'], 'the removal is the last event it got');
  });

  test("a socket closes with 4401 when its access token's session ends", async () => {
    const user = await t.user('events-leaving@example.com');
    await addMember(t, org, owner.token, user, 'viewer');
    const s = await opened(`/ws/orgs/${org}/events`, { authorization: `Bearer ${user.token}` });
    await call(user, 'DELETE', '/users/me/sessions');
    const closed = await s.closed;
    assert.equal(closed.code, 4401);
    assert.match(closed.reason, /^auth\.session_ended/);
  });
});
