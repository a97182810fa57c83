import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { startTestPlatform, type TestPlatform } from './helpers/platform.js';
import { assertProblem } from './helpers/problem.js';
import { uuidv7 } from '../src/core/ids.js';
import { readFileSync } from 'node:fs';
import { certificateAuthority, deviceRequest } from './helpers/tls.js';

type TestUser = Awaited<ReturnType<TestPlatform['user']>>;

/**
 * Routes naming an organization that anyone may call: what they give is public (a CRL lists serials
 * and is signed; EST's cacerts are the CA certificates, csrattrs the same for all) and EST's
 * enrolment under a label takes only that organization's tokens and registered keys.
 */
const publicByDesign = [
  'GET /pki/orgs/:org/crl', 'HEAD /pki/orgs/:org/crl',
  // OCSP answers anyone about an organization's certificates, as its CRL does
  'POST /pki/orgs/:org/ocsp', 'GET /pki/orgs/:org/ocsp/*', 'HEAD /pki/orgs/:org/ocsp/*',
  ...['cacerts', 'csrattrs'].flatMap((path) => [`GET /.well-known/est/:org/${path}`, `HEAD /.well-known/est/:org/${path}`]),
  'POST /.well-known/est/:org/simpleenroll', 'POST /.well-known/est/:org/simplereenroll',
];
type Method = NonNullable<InjectOptions['method']>;

interface Route {
  method: Method;
  /** Fastify's form: `/orgs/:org/devices/:id` */
  url: string;
}

/**
 * Starts a test platform and records every route its app registers, HEAD and hidden routes
 * included: an onRoute hook is added as Fastify creates the app (its `fastify.initialization`
 * diagnostics channel), before any route exists. So a route added later is covered here without
 * editing this file.
 */
async function startRecordingRoutes(): Promise<{ t: TestPlatform; routes: Route[] }> {
  const routes: Route[] = [];
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

/** Fills the `:name` parameters of a route URL, and a trailing wildcard with a plausible subtopic. */
function fill(url: string, param: (name: string, segmentBefore: string) => string): string {
  const parts = url.split('/');
  return parts.map((p, i) => (p.startsWith(':') ? param(p.slice(1), parts[i - 1] ?? '') : p === '*' ? 'sensors/temp' : p)).join('/');
}

describe('tenant isolation', () => {
  let t: TestPlatform;
  let alice: TestUser; // owns organization A
  let bob: TestUser; // owns organization B, and must see nothing of A
  let carol: TestUser; // invited into A, has not accepted
  const a = { org: '', device: '', secret: '', channel: '', group: '', deadLetter: '', invitation: '', registration: '', token: '', certificate: '', manufacturerCa: '' };
  const b = { org: '', device: '', channel: '', group: '' };
  let routes: Route[];
  let orgRoutes: Route[];
  /** A device maker's CA certificate (PEM), to register as a manufacturer CA. */
  const makerCa = readFileSync(certificateAuthority([]).ca, 'utf8');

  /** Everything Alice can see of organization A, to compare before and after Bob's attempts. */
  async function snapshotOfA() {
    const read = async (path: string) => {
      const res = await t.request('GET', `/orgs/${a.org}${path}`, { token: alice.token });
      assert.equal(res.statusCode, 200, `${path}: ${res.body}`);
      return res.json();
    };
    return {
      org: await read(''),
      members: await read('/members'),
      invitations: await read('/invitations'),
      carolsInvitations: (await t.request('GET', '/users/me/invitations', { token: carol.token })).json(),
      devices: await read('/devices?limit=1000'),
      channels: await read('/channels?limit=1000'),
      groups: await read('/groups?limit=1000'),
      groupDevices: await read(`/groups/${a.group}/devices`),
      channelDevices: await read(`/channels/${a.channel}/devices`),
      deviceChannels: await read(`/devices/${a.device}/channels`),
      deadLetters: await read('/dead-letters'),
      deadLetter: await read(`/dead-letters/${a.deadLetter}`),
      registrations: await read('/registrations?limit=1000'),
      tokens: await read('/enrolment-tokens?limit=1000'),
      certificates: await read('/certificates?limit=1000'),
      identityEvents: await read('/identity-events?limit=1000'),
      // an outsider's refused attempts leave no trace in A's event stream either
      events: await read('/events?limit=1000'),
      manufacturerCas: await read('/manufacturer-cas?limit=1000'),
      manufacturerCa: await read(`/manufacturer-cas/${a.manufacturerCa}`),
      twin: await read(`/devices/${a.device}/twin`),
      namedTwin: await read(`/devices/${a.device}/twins/config`),
      twins: await read(`/twins?limit=1000`),
      twinHistory: await read(`/devices/${a.device}/twin/history`),
      twinSettings: await read('/twin-settings'),
      secretWorks: (await t.platform.authorizer.identify({ kind: 'secret', secret: a.secret })).ok,
      bobsDevices: (await t.request('GET', `/orgs/${b.org}/devices?limit=1000`, { token: bob.token })).json(),
    };
  }

  /** Bodies a real client of each route might send, aimed at A's data. */
  function plausibleBodies(): Record<string, unknown> {
    const connection = { device_ids: [a.device], channel_ids: [a.channel], types: ['publish', 'subscribe'] };
    return {
      'PATCH /orgs/:org': { name: 'taken over' },
      'POST /orgs/:org/members': { email: bob.email, role: 'owner' },
      'PATCH /orgs/:org/members/:user_id': { role: 'viewer' },
      'POST /orgs/:org/devices': { name: 'planted' },
      'POST /orgs/:org/devices/bulk': { devices: [{ name: 'planted' }] },
      'PATCH /orgs/:org/devices/:id': { name: 'renamed', metadata: { owner: 'bob' } },
      'POST /orgs/:org/channels': { name: 'planted' },
      'POST /orgs/:org/channels/bulk': { channels: [{ name: 'planted' }] },
      'PATCH /orgs/:org/channels/:id': { name: 'renamed' },
      'POST /orgs/:org/groups': { name: 'planted' },
      'PATCH /orgs/:org/groups/:id': { name: 'renamed' },
      'POST /orgs/:org/groups/:id/devices': { device_ids: [a.device] },
      'DELETE /orgs/:org/groups/:id/devices': { device_ids: [a.device] },
      'POST /orgs/:org/connections': connection,
      'DELETE /orgs/:org/connections': connection,
      'POST /orgs/:org/registrations': { serial: 'planted' },
      'POST /orgs/:org/registrations/bulk': { registrations: [{ serial: 'planted' }] },
      'POST /orgs/:org/enrolment-tokens': {},
      'POST /orgs/:org/certificates/:serial/revoke': { reason: 'keyCompromise' },
      'POST /orgs/:org/manufacturer-cas': { name: 'planted', certificate: makerCa, serials: ['*'], channel_ids: [a.channel] },
      'PATCH /orgs/:org/manufacturer-cas/:id': { serials: ['*'], channel_ids: [a.channel] },
      'PATCH /orgs/:org/devices/:id/twin': { desired: { hijacked: true }, tags: { owner: 'bob' } },
      'PATCH /orgs/:org/devices/:id/twins/:name': { desired: { hijacked: true } },
      'PUT /orgs/:org/twin-settings': { max_section_bytes: 1024, max_depth: 2 },
    };
  }

  /** The plausible body of a route; a route not listed gets `{}` when its method usually carries one. */
  function bodyFor(route: Route): unknown {
    const bodies = plausibleBodies();
    const key = `${route.method} ${route.url}`;
    if (key in bodies) return bodies[key];
    return ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined;
  }

  /** A's id for a path parameter, by its name and the segment before it (`devices/:id`). */
  function idOfA(name: string, segmentBefore: string): string {
    if (name === 'org') return a.org;
    if (name === 'user_id') return alice.id;
    if (name === 'serial') return a.certificate;
    if (name === 'name') return 'config'; // A's named twin
    const bySegment: Record<string, string> = { devices: a.device, channels: a.channel, groups: a.group, 'dead-letters': a.deadLetter, invitations: a.invitation, registrations: a.registration, 'enrolment-tokens': a.token, 'manufacturer-cas': a.manufacturerCa };
    return bySegment[segmentBefore] ?? randomUUID();
  }

  before(async () => {
    ({ t, routes } = await startRecordingRoutes());
    alice = await t.user('alice@example.com');
    bob = await t.user('bob@example.com');
    carol = await t.user('carol@example.com');
    const client = (u: TestUser) => async (method: Method, url: string, body?: unknown) => {
      const res = await t.request(method, url, { token: u.token, body });
      assert.ok(res.statusCode < 300, `${method} ${url}: ${res.body}`);
      return res.statusCode === 204 ? undefined : res.json();
    };
    const asAlice = client(alice);
    const asBob = client(bob);

    a.org = (await asAlice('POST', '/orgs', { name: 'A' })).id;
    const device = await asAlice('POST', `/orgs/${a.org}/devices`, { name: 'a-device', tags: ['a'] });
    a.device = device.id;
    a.secret = device.secret;
    a.channel = (await asAlice('POST', `/orgs/${a.org}/channels`, { name: 'a-channel' })).id;
    a.group = (await asAlice('POST', `/orgs/${a.org}/groups`, { name: 'a-group' })).id;
    await asAlice('POST', `/orgs/${a.org}/groups/${a.group}/devices`, { device_ids: [a.device] });
    await asAlice('POST', `/orgs/${a.org}/connections`, { device_ids: [a.device], channel_ids: [a.channel], types: ['publish', 'subscribe'] });
    // a message of A's that the writer set aside
    a.deadLetter = uuidv7();
    await t.platform.deadLetters.add({ id: a.deadLetter, org: a.org, channel: a.channel, subtopic: '', publisher: a.device, protocol: 'http', contentType: 'application/json', payload: Buffer.from('{"a":1}'), receivedAt: Date.now() }, 'set aside for the test', Date.now());
    a.invitation = (await asAlice('POST', `/orgs/${a.org}/members`, { email: carol.email, role: 'viewer' })).id;
    // an enrolled registration of A's, its certificate, and a token not used yet
    const key = deviceRequest('/CN=A-1');
    a.registration = (await asAlice('POST', `/orgs/${a.org}/registrations`, { serial: 'A-1', public_key: key.publicKey })).id;
    const enrolled = await t.request('POST', '/enrol', { body: { csr: key.csr } });
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    a.certificate = enrolled.json().serial;
    a.token = (await asAlice('POST', `/orgs/${a.org}/enrolment-tokens`, {})).id;
    await asAlice('PATCH', `/orgs/${a.org}/devices/${a.device}/twin`, { desired: { mode: 'eco' }, tags: { site: 'a' } });
    await asAlice('PATCH', `/orgs/${a.org}/devices/${a.device}/twins/config`, { desired: { interval: 60 } });
    a.manufacturerCa = (await asAlice('POST', `/orgs/${a.org}/manufacturer-cas`, { name: 'a-maker', certificate: makerCa, serials: ['A-*'], channel_ids: [a.channel] })).id;

    b.org = (await asBob('POST', '/orgs', { name: 'B' })).id;
    b.device = (await asBob('POST', `/orgs/${b.org}/devices`, { name: 'b-device' })).id;
    b.channel = (await asBob('POST', `/orgs/${b.org}/channels`, { name: 'b-channel' })).id;
    b.group = (await asBob('POST', `/orgs/${b.org}/groups`, { name: 'b-group' })).id;

    // the published PKI (an organization's CRL) is public by design: anyone who checks a certificate reads it
    orgRoutes = routes.filter((r) => r.url.split('/').includes(':org') && !publicByDesign.includes(`${r.method} ${r.url}`));
  });
  after(() => t.close());

  test('the recorded routes are complete', () => {
    const all = routes.map((r) => `${r.method} ${r.url}`);
    // every documented operation was recorded: nothing was registered before the hook
    // compared with every parameter unnamed: the document names a wildcard (`*`) as a parameter
    const shape = (route: string) => route.replace(/\{\w+\}|:\w+|\*/g, '{}');
    const documented = Object.entries((t.app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${shape(path)}`),
    );
    assert.deepEqual(documented.filter((r) => !all.map(shape).includes(r)), []);
    assert.ok(all.includes('GET /openapi.json'), 'hidden routes are recorded too');
    assert.deepEqual(Object.keys(plausibleBodies()).filter((r) => !all.includes(r)), [], 'every plausible body belongs to a route');
    assert.ok(orgRoutes.length > 25, `only ${orgRoutes.length} organization routes found`);
    for (const r of ['GET /orgs/:org', 'DELETE /orgs/:org/devices/:id', 'POST /orgs/:org/connections', 'HEAD /orgs/:org/groups/:id/devices']) {
      assert.ok(orgRoutes.some((x) => `${x.method} ${x.url}` === r), `${r} is listed`);
    }
  });

  test("every organization route answers 404 to an outsider using A's ids, and changes nothing", async () => {
    const before = await snapshotOfA();
    const leaks: string[] = [];
    for (const route of orgRoutes) {
      const url = fill(route.url, idOfA);
      const res = await t.request(route.method, url, { token: bob.token, body: bodyFor(route) });
      const code = route.method === 'HEAD' ? 'org.not_found' : res.json().code;
      if (res.statusCode !== 404 || code !== 'org.not_found') leaks.push(`${route.method} ${route.url}: ${res.statusCode} ${res.body}`);
    }
    assert.deepEqual(leaks, []);
    assert.deepEqual(await snapshotOfA(), before);
    assert.equal(before.devices.total, 2, 'the device made and the one enrolled');
    assert.equal(before.certificates.total, 1);
    assert.equal(before.registrations.registrations[0].state, 'enrolled');
    assert.equal(before.channels.total, 1);
    assert.equal(before.deviceChannels.total, 1);
    assert.equal(before.secretWorks, true);
  });

  test("A's resource ids under B's organization are not found", async () => {
    const before = await snapshotOfA();
    const withIds = orgRoutes.filter((r) => r.url.split('/').some((p) => p.startsWith(':') && p !== ':org'));
    assert.ok(withIds.length > 15, `only ${withIds.length} routes with resource ids found`);
    const leaks: string[] = [];
    for (const route of withIds) {
      const url = fill(route.url, (name, segmentBefore) => (name === 'org' ? b.org : idOfA(name, segmentBefore)));
      const res = await t.request(route.method, url, { token: bob.token, body: bodyFor(route) });
      const code = route.method === 'HEAD' ? 'not_found' : String(res.json().code);
      if (res.statusCode !== 404 || !code.endsWith('not_found')) leaks.push(`${route.method} ${route.url}: ${res.statusCode} ${res.body}`);
    }
    assert.deepEqual(leaks, []);
    assert.deepEqual(await snapshotOfA(), before);
  });

  test("routes outside /orgs that name A's resources answer 404 to an outsider", async () => {
    // e.g. the messaging routes /channels/:id/messages, which find the organization through the channel
    const resourceSegments = new Set(['devices', 'channels', 'groups']);
    const byResource = routes.filter((r) => !r.url.startsWith('/orgs/') && r.url.split('/').some((p, i, parts) => p.startsWith(':') && resourceSegments.has(parts[i - 1] ?? '')));
    assert.ok(byResource.length > 0, 'the messaging routes are found');
    const leaks: string[] = [];
    for (const route of byResource) {
      const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? [{ n: 'planted', v: 1 }] : undefined;
      const res = await t.request(route.method, fill(route.url, idOfA), { token: bob.token, body });
      if (res.statusCode !== 404) leaks.push(`${route.method} ${route.url}: ${res.statusCode} ${res.body}`);
    }
    assert.deepEqual(leaks, []);
  });

  test("A's ids in request bodies under B's organization are not found", async () => {
    const before = await snapshotOfA();
    const asBob = (method: Method, path: string, body?: unknown) => t.request(method, `/orgs/${b.org}${path}`, { token: bob.token, body });

    for (const method of ['POST', 'DELETE'] as const) {
      const foreignDevice = await asBob(method, '/connections', { device_ids: [a.device], channel_ids: [b.channel], types: ['publish'] });
      assertProblem(foreignDevice, 404, 'device.not_found');
      assert.deepEqual(foreignDevice.json().missing_ids, [a.device]);
      const foreignChannel = await asBob(method, '/connections', { device_ids: [b.device], channel_ids: [a.channel], types: ['subscribe'] });
      assertProblem(foreignChannel, 404, 'channel.not_found');
      assert.deepEqual(foreignChannel.json().missing_ids, [a.channel]);
    }
    const intoGroup = await asBob('POST', `/groups/${b.group}/devices`, { device_ids: [a.device] });
    assertProblem(intoGroup, 404, 'device.not_found');
    assert.deepEqual(intoGroup.json().missing_ids, [a.device]);
    // taking A's device out of B's group touches nothing of A
    assert.equal((await asBob('DELETE', `/groups/${b.group}/devices`, { device_ids: [a.device] })).statusCode, 204);

    const byGroup = await asBob('GET', `/devices?group_id=${a.group}`);
    assert.equal(byGroup.statusCode, 200);
    assert.deepEqual({ total: byGroup.json().total, devices: byGroup.json().devices }, { total: 0, devices: [] });
    assert.equal((await asBob('GET', '/devices?tag=a')).json().total, 0);
    assert.deepEqual((await asBob('GET', '/devices')).json().devices.map((d: { id: string }) => d.id), [b.device]);
    assert.equal((await asBob('GET', `/channels/${b.channel}/devices`)).json().total, 0);

    // a personal access token cannot be aimed at A either
    const pat = await t.request('POST', '/users/me/tokens', { token: bob.token, body: { name: 'sneaky', org_id: a.org, actions: ['devices:read'], expires_in: 3600 } });
    assertProblem(pat, 404, 'org.not_found');
    assert.deepEqual(await snapshotOfA(), before);
  });

  test("an invitation into A is neither seen nor accepted nor declined by anyone but its user", async () => {
    const before = await snapshotOfA();
    assert.equal(before.carolsInvitations.total, 1);
    const own = routes.filter((r) => r.url.startsWith('/users/me/invitations/:id'));
    assert.ok(own.length >= 2, 'accept and decline are found');
    for (const route of own) {
      assertProblem(await t.request(route.method, fill(route.url, () => a.invitation), { token: bob.token }), 404, 'org.invitation_not_found');
    }
    assert.equal((await t.request('GET', '/users/me/invitations', { token: bob.token })).json().total, 0);
    // an invitation of B's is not withdrawn through A, nor A's through B
    assertProblem(await t.request('DELETE', `/orgs/${b.org}/invitations/${a.invitation}`, { token: bob.token }), 404, 'org.invitation_not_found');
    assert.deepEqual(await snapshotOfA(), before);
  });

  test("an outsider's listings show nothing of A", async () => {
    const orgs = (await t.request('GET', '/orgs', { token: bob.token })).json();
    assert.deepEqual(orgs.orgs.map((o: { id: string }) => o.id), [b.org]);
    assert.equal(orgs.total, 1);
    assert.equal((await t.request('GET', '/orgs?name=A', { token: bob.token })).json().total, 0);
  });

  test('a normal user can neither list nor read nor change other users', async () => {
    const aliceBefore = (await t.request('GET', '/users/me', { token: alice.token })).json();
    assertProblem(await t.request('GET', '/users', { token: bob.token }), 403, 'auth.forbidden');
    assertProblem(await t.request('GET', `/users?email=${encodeURIComponent(alice.email)}`, { token: bob.token }), 403, 'auth.forbidden');
    assertProblem(await t.request('GET', `/users/${alice.id}`, { token: bob.token }), 404, 'user.not_found');
    assertProblem(await t.request('PATCH', `/users/${alice.id}`, { token: bob.token, body: { name: 'Mallory', role: 'admin', password: 'bobs-password-now' } }), 403, 'auth.forbidden');
    assertProblem(await t.request('DELETE', `/users/${alice.id}`, { token: bob.token }), 403, 'auth.forbidden');
    assertProblem(await t.request('POST', '/users', { token: bob.token, body: { email: 'mallory@example.com', password: 'mallorys-password' } }), 403, 'auth.forbidden');
    assertProblem(await t.request('PATCH', `/users/${bob.id}`, { token: bob.token, body: { role: 'admin' } }), 403, 'auth.forbidden');

    assert.deepEqual((await t.request('GET', '/users/me', { token: alice.token })).json(), aliceBefore);
    assert.equal((await t.request('GET', '/users/me', { token: bob.token })).json().role, 'user');
    // the members of A are not Bob's to read either
    assertProblem(await t.request('GET', `/orgs/${a.org}/members/${alice.id}`, { token: bob.token }), 404, 'org.not_found');
  });
});
