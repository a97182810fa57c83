import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { ConfigError, loadConfig } from '../core/config.js';
import { serverUrl, type OpenApiDocument } from './openapi.js';

type Response = { description?: string; content?: Record<string, { schema?: { $ref?: string } }> };
type Operation = {
  operationId?: string;
  summary?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; schema?: { default?: unknown } }[];
  responses: Record<string, Response>;
};

/** Operations anyone may call without credentials: the probes, the metrics, this document, logging in and signing up. */
const publicOperations = ['GET /health', 'GET /livez', 'GET /ready', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'POST /auth/token', 'POST /auth/refresh', 'POST /auth/logout', 'POST /auth/signup', 'POST /enrol', 'GET /pki/orgs/{org}/crl', 'POST /pki/orgs/{org}/ocsp', 'GET /pki/orgs/{org}/ocsp/{request}',
  // EST, RFC 7030: a device enrols with its token or registered key, not a user's credentials
  'GET /.well-known/est/cacerts', 'GET /.well-known/est/{org}/cacerts', 'GET /.well-known/est/csrattrs', 'GET /.well-known/est/{org}/csrattrs', 'POST /.well-known/est/simpleenroll', 'POST /.well-known/est/{org}/simpleenroll', 'POST /.well-known/est/simplereenroll', 'POST /.well-known/est/{org}/simplereenroll',
];
/** Public operations that take no input, so that no client error is theirs to document. */
const withoutInput = ['GET /health', 'GET /livez', 'GET /ready', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'GET /.well-known/est/cacerts', 'GET /.well-known/est/csrattrs'];

function operations(doc: OpenApiDocument): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op as unknown as Operation] as [string, Operation]));
}

describe('the OpenAPI document at /openapi.json', () => {
  let t: TestPlatform;
  let doc: OpenApiDocument;
  let ops: [string, Operation][];
  before(async () => {
    t = await startTestPlatform();
    const res = await t.request('GET', '/openapi.json');
    assert.equal(res.statusCode, 200);
    doc = res.json() as OpenApiDocument;
    ops = operations(doc);
  });
  after(() => t.close());

  test('documents the whole API', () => {
    assert.ok(ops.length > 70, `only ${ops.length} operations`);
    for (const name of publicOperations) assert.ok(ops.some(([n]) => n === name), `${name} is documented`);
  });

  test('every operation has a unique operationId, a summary and a description', () => {
    const seen = new Map<string, string>();
    for (const [name, op] of ops) {
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]+$/, `${name} has an operationId`);
      assert.equal(seen.get(op.operationId!), undefined, `${name} and ${seen.get(op.operationId!)} share the operationId ${op.operationId}`);
      seen.set(op.operationId!, name);
      assert.ok((op.summary ?? '').length > 0, `${name} has a summary`);
      assert.ok((op.description ?? '').length > 20, `${name} has a description`);
    }
  });

  test('the problem schema is the named component Problem', () => {
    const problem = (doc.components.schemas as Record<string, { type?: string; required?: string[] }>).Problem;
    assert.ok(problem, 'components.schemas.Problem');
    assert.equal(problem.type, 'object');
    for (const field of ['type', 'title', 'status', 'detail', 'code']) assert.ok(problem.required?.includes(field), `Problem requires ${field}`);
    assert.deepEqual(Object.keys(doc.components.schemas as object).filter((k) => /^def-\d+$/.test(k)), [], 'no anonymous def-N components');
  });

  test('every operation documents 500, and every error answer is application/problem+json with the Problem schema', () => {
    for (const [name, op] of ops) {
      assert.ok(op.responses['500'], `${name} documents 500`);
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        assert.deepEqual(Object.keys(response.content ?? {}), ['application/problem+json'], `${name} ${status}`);
        assert.equal(response.content!['application/problem+json']!.schema?.$ref, '#/components/schemas/Problem', `${name} ${status}`);
        assert.ok(response.description && response.description !== 'Default Response', `${name} ${status} is described`);
      }
    }
  });

  test('every operation but the input-less public ones documents a client error (4xx)', () => {
    const without = ops.filter(([, op]) => !Object.keys(op.responses).some((s) => s.startsWith('4'))).map(([name]) => name);
    assert.deepEqual(without.sort(), [...withoutInput].sort());
  });

  test('no path carries the framework wildcard: the subtopic is a named path parameter', () => {
    for (const path of Object.keys(doc.paths)) assert.doesNotMatch(path, /\*|:/, path);
    const publish = doc.paths['/channels/{id}/messages/{subtopic}']?.post as unknown as Operation | undefined;
    assert.ok(publish, 'POST /channels/{id}/messages/{subtopic}');
    assert.deepEqual(publish.parameters!.filter((p) => p.in === 'path').map((p) => [p.name, p.required]).sort(), [['id', true], ['subtopic', true]]);
  });

  test('a subtopic sent as a generated client encodes the path parameter (lab%2Fbench) is the subtopic lab/bench', async () => {
    const admin = await t.user('subtopic-admin@example.org', 'admin');
    const org = (await t.request('POST', '/orgs', { token: admin.token, body: { name: 'o' } })).json().id as string;
    const channel = (await t.request('POST', `/orgs/${org}/channels`, { token: admin.token, body: { name: 'c' } })).json().id as string;
    const published = await t.request('POST', `/channels/${channel}/messages/${encodeURIComponent('lab/bench')}`, { token: admin.token, body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(published.statusCode, 202, published.body);
    // the 202 comes once the message is stored
    const read = (await t.request('GET', `/channels/${channel}/messages?total=true&type=json&subtopic=lab/bench`, { token: admin.token })).json();
    assert.deepEqual(read.messages.map((m: { subtopic: string }) => m.subtopic), ['lab/bench']);
  });

  test('a parameter with a default is not required', () => {
    let defaults = 0;
    for (const [name, op] of ops) {
      for (const p of op.parameters ?? []) {
        if (p.schema?.default === undefined) continue;
        defaults++;
        assert.notEqual(p.required, true, `${name} ${p.in} ${p.name}`);
      }
    }
    assert.ok(defaults > 10, `only ${defaults} parameters with defaults`);
    const list = doc.paths['/orgs/{org}/devices']!.get as unknown as Operation;
    assert.deepEqual(list.parameters!.filter((p) => ['offset', 'limit', 'sort', 'dir'].includes(p.name)).map((p) => p.required), [false, false, false, false]);
  });

  test('public operations say security: [], every other one names its schemes', () => {
    const schemes = Object.keys(doc.components.securitySchemes as object);
    const open: string[] = [];
    for (const [name, op] of ops) {
      assert.ok(Array.isArray(op.security), `${name} declares its security`);
      if (op.security!.length === 0) open.push(name);
      for (const requirement of op.security!) for (const scheme of Object.keys(requirement)) assert.ok(schemes.includes(scheme), `${name}: ${scheme}`);
    }
    assert.deepEqual(open.sort(), [...publicOperations].sort());
  });

  test('servers names this platform: the HTTP listener by default', () => {
    assert.deepEqual(doc.servers?.map((s) => s.url), ['http://127.0.0.1:8080']);
  });
});

describe('the servers of the OpenAPI document', () => {
  test('FLEETWIRE_PUBLIC_URL is the server, without a trailing slash', async () => {
    const t = await startTestPlatform({ publicUrl: 'https://iot.example.org/fleet/' });
    try {
      const doc = (await t.request('GET', '/openapi.json')).json() as OpenApiDocument;
      assert.deepEqual(doc.servers?.map((s) => s.url), ['https://iot.example.org/fleet']);
    } finally {
      await t.close();
    }
  });

  test('a listening platform names the port it listens on', async () => {
    const t = await startTestPlatform({ httpPort: 0 });
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = t.app.server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
      const doc = (await res.json()) as OpenApiDocument;
      assert.deepEqual(doc.servers?.map((s) => s.url), [`http://127.0.0.1:${port}`]);
    } finally {
      await t.close();
    }
  });

  test('the default follows the listener: scheme, address and port', () => {
    const base = { publicUrl: '', host: '127.0.0.1', httpPort: 8080, httpTlsCert: '' };
    assert.equal(serverUrl(base), 'http://127.0.0.1:8080');
    assert.equal(serverUrl({ ...base, httpTlsCert: '/etc/fw/cert.pem' }), 'https://127.0.0.1:8080');
    assert.equal(serverUrl(base, { address: '127.0.0.1', family: 'IPv4', port: 41234 }), 'http://127.0.0.1:41234');
    assert.equal(serverUrl({ ...base, host: '0.0.0.0' }), 'http://localhost:8080');
    assert.equal(serverUrl({ ...base, host: '::' }), 'http://localhost:8080');
    assert.equal(serverUrl({ ...base, host: '::1' }), 'http://[::1]:8080');
    assert.equal(serverUrl({ ...base, publicUrl: 'https://iot.example.org' }), 'https://iot.example.org');
  });

  test('FLEETWIRE_PUBLIC_URL must be an http(s) base URL', () => {
    assert.equal(loadConfig({ FLEETWIRE_PUBLIC_URL: 'https://iot.example.org/api' }).publicUrl, 'https://iot.example.org/api');
    for (const bad of ['iot.example.org', 'ftp://iot.example.org', 'https://iot.example.org/?x=1', 'https://iot.example.org/#top', 'https://user:pw@iot.example.org']) {
      assert.throws(() => loadConfig({ FLEETWIRE_PUBLIC_URL: bad }), (e: unknown) => e instanceof ConfigError && e.setting === 'FLEETWIRE_PUBLIC_URL', bad);
    }
  });
});
