import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { orgOf, principalOf } from '../auth.js';
import { OrgIdParams, OrgParams, PageQuery, StringEnum, Timestamp, Uuid, pageOf, problems } from '../schemas.js';
import { maxBulkRegistrations, maxManufacturerSerials, revocationReasons, type Caller } from '../../identity/index.js';
import { endpointsOf, type ListeningPorts } from './endpoints.js';
import { certificateOf, factoryCertificateOf } from '../credentials.js';
import { AppError } from '../../core/errors.js';

const identityActions = ['register', 'token', 'manufacturer_ca', 'enrol', 'renew', 'supersede', 'suspend', 'resume', 'reset', 'revoke', 'delete', 'revoke_certificate'] as const;
const State = StringEnum(['pending', 'enrolled', 'suspended', 'revoked']);
const Serial = Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'The device serial (printable ASCII, no spaces)' });
const Pem = Type.String({ description: 'PEM' });

const RegistrationSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  serial: Type.String(),
  model: Type.String(),
  key_fingerprint: Type.Union([Type.String(), Type.Null()], { description: 'SHA-256 of the registered public key (SubjectPublicKeyInfo DER), hex; null until a key is registered or the device enrols' }),
  channel_ids: Type.Array(Uuid),
  group_ids: Type.Array(Uuid),
  state: State,
  device_id: Type.Union([Uuid, Type.Null()], { description: 'The device, once enrolled' }),
  enrolled_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const NewRegistration = Type.Object({
  serial: Serial,
  model: Type.Optional(Type.String({ maxLength: 128 })),
  public_key: Type.Optional(Type.String({ maxLength: 4096, description: "The device's public key: PEM (BEGIN PUBLIC KEY), or the hex SHA-256 of its DER. With it, the device enrols without a token, by proving it holds the key" })),
  channel_ids: Type.Optional(Type.Array(Uuid, { maxItems: 100, description: 'Channels the device is connected to (publish and subscribe) when it enrols' })),
  group_ids: Type.Optional(Type.Array(Uuid, { maxItems: 100, description: 'Groups the device joins when it enrols' })),
}, { additionalProperties: false });

const TokenSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  serial_pattern: Type.Union([Type.String(), Type.Null()]),
  expires_at: Timestamp,
  used_at: Type.Union([Timestamp, Type.Null()]),
  registration_id: Type.Union([Uuid, Type.Null()]),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});

const CertificateSchema = Type.Object({
  serial: Type.String({ description: 'Hex, lowercase' }),
  org_id: Uuid,
  device_id: Uuid,
  registration_id: Type.Union([Uuid, Type.Null()]),
  fingerprint: Type.String({ description: 'SHA-256 of the certificate DER, hex' }),
  key_fingerprint: Type.String({ description: 'SHA-256 of its public key (SubjectPublicKeyInfo DER), hex' }),
  certificate: Pem,
  not_before: Timestamp,
  not_after: Timestamp,
  status: StringEnum(['active', 'revoked']),
  revoked_at: Type.Union([Timestamp, Type.Null()]),
  revocation_reason: Type.Union([Type.String(), Type.Null()]),
  replaces: Type.Union([Type.String(), Type.Null()], { description: 'The certificate this one renewed: it stays active until the device first connects with this one, then it is revoked as superseded' }),
  created_at: Timestamp,
});

const EventSchema = Type.Object({
  id: Uuid,
  org_id: Type.Union([Uuid, Type.Null()]),
  registration_id: Type.Union([Uuid, Type.Null()]),
  action: StringEnum(identityActions),
  outcome: StringEnum(['ok', 'refused']),
  code: Type.Union([Type.String(), Type.Null()], { description: 'For a refusal: the stable error code of the step that failed' }),
  detail: Type.String(),
  actor: Type.String({ description: 'user:<id>, token:<enrolment token id>, device, or key (an enrolment by a registered key)' }),
  remote: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});

const Enrolled = Type.Object({
  certificate: Pem,
  chain: Type.Array(Pem, { description: "The organization's issuing CA, then the platform root: send the certificate with the first" }),
  serial: Type.String(),
  not_after: Timestamp,
  org_id: Uuid,
  device_id: Uuid,
  registration_id: Uuid,
  channel_ids: Type.Array(Uuid),
  root_ca: Pem,
  endpoints: Type.Record(Type.String(), Type.String(), { description: 'Where the device connects (as GET /endpoints gives)' }),
});

const SerialPattern = Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'A serial, or a pattern where `*` matches any run of characters' });
const ManufacturerCaSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  name: Type.String(),
  certificate: Pem,
  fingerprint: Type.String({ description: 'SHA-256 of the certificate DER, hex' }),
  subject: Type.String({ description: 'The CA subject, one `key=value` a line' }),
  not_after: Timestamp,
  serials: Type.Array(SerialPattern, { description: 'The allow-list: a factory certificate enrols when its serial (subject serialNumber, else CN) matches one' }),
  channel_ids: Type.Array(Uuid, { description: 'Channels a device it enrols is connected to (publish and subscribe), when it has no registration' }),
  group_ids: Type.Array(Uuid, { description: 'Groups a device it enrols joins, when it has no registration' }),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'ManufacturerCa' });
const ManufacturerCaChange = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  serials: Type.Array(SerialPattern, { minItems: 1, maxItems: maxManufacturerSerials }),
  channel_ids: Type.Array(Uuid, { maxItems: 100 }),
  group_ids: Type.Array(Uuid, { maxItems: 100 }),
};

function userCaller(req: FastifyRequest): Caller {
  return { actor: `user:${principalOf(req).userId}`, remote: req.ip, transport: 'api' };
}

export function identityRoutes(fastify: FastifyInstance, platform: Platform, listening: () => ListeningPorts, mqttOverWebSocket: boolean): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { identity } = platform;
  const tags = ['identity'];

  app.post('/orgs/:org/registrations', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'createRegistration',
      tags,
      summary: 'Register a device in advance',
      description: 'A pending registration: the device enrols against it with its key pair (docs/identity.md), with a registered key or a token. Needs `identity:write`.',
      params: OrgParams,
      body: NewRegistration,
      response: { 201: RegistrationSchema, ...problems(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const [r] = await identity.register(orgOf(req).orgId, [req.body], userCaller(req));
    reply.code(201).header('location', `/orgs/${r!.org_id}/registrations/${r!.id}`);
    return r!;
  });

  app.post('/orgs/:org/registrations/bulk', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'createRegistrations',
      tags,
      summary: `Register up to ${maxBulkRegistrations} devices at once (all or nothing)`,
      description: 'An import: every registration is made, or none (a serial registered already, or given twice, is named). Needs `identity:write`.',
      params: OrgParams,
      body: Type.Object({ registrations: Type.Array(NewRegistration, { minItems: 1, maxItems: maxBulkRegistrations }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ registrations: Type.Array(RegistrationSchema) }), ...problems(400, 401, 403, 404, 409, 413) },
    },
  }, async (req, reply) => {
    const made = await identity.register(orgOf(req).orgId, req.body.registrations, userCaller(req));
    reply.code(201);
    return { registrations: made };
  });

  app.get('/orgs/:org/registrations', {
    config: { action: 'identity:read' },
    schema: {
      operationId: 'listRegistrations',
      tags,
      summary: 'List registrations',
      description: 'Newest first; filter by state or serial. Needs `identity:read`.',
      params: OrgParams,
      querystring: Type.Intersect([PageQuery, Type.Object({ state: Type.Optional(State), serial: Type.Optional(Serial) })]),
      response: { 200: pageOf('registrations', RegistrationSchema), ...problems(400, 401, 404) },
    },
  }, async (req) => {
    const { total, items } = await identity.listRegistrations(orgOf(req).orgId, req.query);
    return { total, offset: req.query.offset, limit: req.query.limit, registrations: items };
  });

  app.get('/orgs/:org/registrations/:id', {
    config: { action: 'identity:read' },
    schema: { operationId: 'getRegistration', tags, summary: 'Get a registration', description: 'Needs `identity:read`.', params: OrgIdParams, response: { 200: RegistrationSchema, ...problems(401, 404) } },
  }, async (req) => identity.registration(orgOf(req).orgId, req.params.id));

  const transitions = {
    suspend: 'Suspend: the device is refused on every protocol and its sessions end at once; its certificates are kept (resume undoes it).',
    resume: 'Resume a suspended registration: the device may connect again with its certificates.',
    reset: 'Back to pending: its certificates are revoked and its sessions end; the device enrols again (a factory reset).',
    revoke: 'For good: its certificates are revoked, its sessions end, and it cannot enrol again.',
  } as const;
  for (const [action, description] of Object.entries(transitions) as [keyof typeof transitions, string][]) {
    app.post(`/orgs/:org/registrations/:id/${action}`, {
      config: { action: 'identity:write' },
      schema: { operationId: `${action}Registration`, tags, summary: `${action[0]!.toUpperCase()}${action.slice(1)} a registration`, description: `${description} Needs \`identity:write\`.`, params: OrgIdParams, response: { 200: RegistrationSchema, ...problems(401, 403, 404, 409) } },
    }, async (req) => identity.transition(orgOf(req).orgId, req.params.id, action, userCaller(req)));
  }

  app.delete('/orgs/:org/registrations/:id', {
    config: { action: 'identity:write' },
    schema: { operationId: 'deleteRegistration', tags, summary: 'Delete a registration', description: 'Only one that is pending or revoked (revoke an enrolled one first); its device stays. Needs `identity:write`.', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404, 409) } },
  }, async (req, reply) => {
    await identity.deleteRegistration(orgOf(req).orgId, req.params.id, userCaller(req));
    reply.code(204);
  });

  app.post('/orgs/:org/manufacturer-cas', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'createManufacturerCa',
      tags,
      summary: "Register a device maker's CA",
      description:
        'A device whose factory certificate this CA signed enrols by presenting that certificate as its TLS client certificate over HTTPS (POST /enrol or EST simpleenroll, no token), when its serial is on the allow-list: it gets a registration (with these channels and groups) unless it has one. Needs `identity:write`.',
      params: OrgParams,
      body: Type.Object({ ...ManufacturerCaChange, certificate: Type.String({ maxLength: 16384, description: 'The CA certificate, PEM' }), channel_ids: Type.Optional(ManufacturerCaChange.channel_ids), group_ids: Type.Optional(ManufacturerCaChange.group_ids) }, { additionalProperties: false }),
      response: { 201: ManufacturerCaSchema, ...problems(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const ca = await identity.addManufacturerCa(orgOf(req).orgId, req.body, userCaller(req));
    reply.code(201).header('location', `/orgs/${ca.org_id}/manufacturer-cas/${ca.id}`);
    return ca;
  });

  app.get('/orgs/:org/manufacturer-cas', {
    config: { action: 'identity:read' },
    schema: { operationId: 'listManufacturerCas', tags, summary: "List the organization's manufacturer CAs", description: 'Newest first. Needs `identity:read`.', params: OrgParams, querystring: PageQuery, response: { 200: pageOf('manufacturer_cas', ManufacturerCaSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await identity.listManufacturerCas(orgOf(req).orgId, req.query);
    return { total, offset: req.query.offset, limit: req.query.limit, manufacturer_cas: items };
  });

  app.get('/orgs/:org/manufacturer-cas/:id', {
    config: { action: 'identity:read' },
    schema: { operationId: 'getManufacturerCa', tags, summary: 'A manufacturer CA', description: 'Needs `identity:read`.', params: OrgIdParams, response: { 200: ManufacturerCaSchema, ...problems(401, 404) } },
  }, async (req) => identity.manufacturerCa(orgOf(req).orgId, req.params.id));

  app.patch('/orgs/:org/manufacturer-cas/:id', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'updateManufacturerCa',
      tags,
      summary: "Change a manufacturer CA's name, allow-list, channels or groups",
      description: 'For enrolments from now on; devices it enrolled keep what they have. Needs `identity:write`.',
      params: OrgIdParams,
      body: Type.Partial(Type.Object(ManufacturerCaChange), { additionalProperties: false, minProperties: 1 }),
      response: { 200: ManufacturerCaSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => identity.updateManufacturerCa(orgOf(req).orgId, req.params.id, req.body, userCaller(req)));

  app.delete('/orgs/:org/manufacturer-cas/:id', {
    config: { action: 'identity:write' },
    schema: { operationId: 'deleteManufacturerCa', tags, summary: 'Remove a manufacturer CA', description: 'Its factory certificates enrol nothing from now on; devices it enrolled keep their platform certificates. Needs `identity:write`.', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await identity.deleteManufacturerCa(orgOf(req).orgId, req.params.id, userCaller(req));
    return reply.code(204).send(null);
  });

  app.post('/orgs/:org/enrolment-tokens', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'createEnrolmentToken',
      tags,
      summary: 'Make a one-time enrolment token',
      description: 'The token is in this response only (the platform keeps its hash). It enrols one device, once, before it expires; with `serial_pattern` (`*` matches any run of characters) only a serial it matches. Needs `identity:write`.',
      params: OrgParams,
      body: Type.Object({
        expires_in: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86_400, description: 'Seconds; default FLEETWIRE_ENROLMENT_TOKEN_TTL (15 minutes)' })),
        serial_pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' })),
      }, { additionalProperties: false }),
      response: { 201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String({ description: 'Shown only now' }) })]), ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    const t = await identity.createToken(orgOf(req).orgId, { ...(req.body.expires_in ? { ttl_ms: req.body.expires_in * 1000 } : {}), ...(req.body.serial_pattern ? { serial_pattern: req.body.serial_pattern } : {}) }, userCaller(req));
    reply.code(201);
    return t;
  });

  app.get('/orgs/:org/enrolment-tokens', {
    config: { action: 'identity:read' },
    schema: { operationId: 'listEnrolmentTokens', tags, summary: 'List enrolment tokens', description: 'Newest first, without the tokens themselves. Needs `identity:read`.', params: OrgParams, querystring: PageQuery, response: { 200: pageOf('tokens', TokenSchema), ...problems(400, 401, 404) } },
  }, async (req) => {
    const { total, items } = await identity.listTokens(orgOf(req).orgId, req.query);
    return { total, offset: req.query.offset, limit: req.query.limit, tokens: items };
  });

  app.delete('/orgs/:org/enrolment-tokens/:id', {
    config: { action: 'identity:write' },
    schema: { operationId: 'deleteEnrolmentToken', tags, summary: 'Withdraw an enrolment token', description: 'It can no longer enrol anything. Needs `identity:write`.', params: OrgIdParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
  }, async (req, reply) => {
    await identity.deleteToken(orgOf(req).orgId, req.params.id);
    reply.code(204);
  });

  app.get('/orgs/:org/certificates', {
    config: { action: 'identity:read' },
    schema: {
      operationId: 'listCertificates',
      tags,
      summary: 'List device certificates',
      description: 'Newest first; filter by device, status, or expiry before a time. Needs `identity:read`.',
      params: OrgParams,
      querystring: Type.Intersect([PageQuery, Type.Object({ device_id: Type.Optional(Uuid), status: Type.Optional(StringEnum(['active', 'revoked'])), expiring_before: Type.Optional(Timestamp) })]),
      response: { 200: pageOf('certificates', CertificateSchema), ...problems(400, 401, 404) },
    },
  }, async (req) => {
    const { total, items } = await identity.listCertificates(orgOf(req).orgId, req.query);
    return { total, offset: req.query.offset, limit: req.query.limit, certificates: items };
  });

  const SerialParams = Type.Object({ org: Type.String(), serial: Type.String() });
  app.get('/orgs/:org/certificates/:serial', {
    config: { action: 'identity:read' },
    schema: { operationId: 'getCertificate', tags, summary: 'Get a device certificate', description: 'Needs `identity:read`.', params: SerialParams, response: { 200: CertificateSchema, ...problems(401, 404) } },
  }, async (req) => identity.certificate(orgOf(req).orgId, req.params.serial));

  app.post('/orgs/:org/certificates/:serial/revoke', {
    config: { action: 'identity:write' },
    schema: {
      operationId: 'revokeCertificate',
      tags,
      summary: 'Revoke a device certificate',
      description: "The device's sessions that use it end on every node at once, it cannot connect with it again, and the CRL lists it. Revoking a revoked one changes nothing. Needs `identity:write`.",
      params: SerialParams,
      body: Type.Optional(Type.Object({ reason: Type.Optional(StringEnum(revocationReasons)) }, { additionalProperties: false })),
      response: { 200: CertificateSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => identity.revokeCertificate(orgOf(req).orgId, req.params.serial, req.body?.reason ?? 'unspecified', userCaller(req)));

  app.get('/orgs/:org/ca', {
    config: { action: 'identity:read' },
    schema: { operationId: 'getCertificateAuthority', tags, summary: "The organization's issuing CA and the platform root", description: 'PEM; the issuing CA is made on first use. Needs `identity:read`.', params: OrgParams, response: { 200: Type.Object({ issuing: Pem, root: Pem }), ...problems(401, 404) } },
  }, async (req) => identity.caCertificate(orgOf(req).orgId));

  app.get('/orgs/:org/identity-events', {
    config: { action: 'identity:read' },
    schema: {
      operationId: 'listIdentityEvents',
      tags,
      summary: 'The identity audit trail',
      description: 'Registrations, tokens, enrolments (refused ones with the code of the step that failed) and operator actions, newest first; `action=enrol&outcome=refused` is the queue of failed enrolments. Needs `identity:read`.',
      params: OrgParams,
      querystring: Type.Intersect([PageQuery, Type.Object({ outcome: Type.Optional(StringEnum(['ok', 'refused'])), registration_id: Type.Optional(Uuid), action: Type.Optional(StringEnum(identityActions)) })]),
      response: { 200: pageOf('events', EventSchema), ...problems(400, 401, 404) },
    },
  }, async (req) => {
    const { total, items } = await identity.listEvents(orgOf(req).orgId, req.query);
    return { total, offset: req.query.offset, limit: req.query.limit, events: items };
  });

  app.post('/enrol', {
    config: { auth: 'none' },
    schema: {
      operationId: 'enrol',
      tags,
      summary: 'Enrol a device from its certificate request',
      description: 'The device sends a PKCS#10 CSR of its own EC P-256 key (its private key never leaves it) and, unless its key was registered or it presents a factory certificate of a registered manufacturer CA as TLS client certificate, a one-time enrolment token. The answer is its certificate, the CA chain and where to connect: then it connects to MQTT over TLS with that certificate. Refusals carry a stable code naming the failed step (docs/identity.md).',
      body: Type.Object({
        csr: Type.String({ maxLength: 8192, description: 'PKCS#10, PEM (or base64 DER)' }),
        token: Type.Optional(Type.String({ maxLength: 256 })),
        serial: Type.Optional(Serial),
      }, { additionalProperties: false }),
      response: { 201: Enrolled, ...problems(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    // no token over HTTPS with a certificate the platform did not issue: a factory certificate
    const factory = req.body.token ? undefined : factoryCertificateOf(req, platform.trust.current());
    const enrolled = await identity.enrol({ ...req.body, ...(factory ? { factoryCertificate: factory } : {}) }, { actor: req.body.token ? 'token' : factory ? 'manufacturer' : 'key', remote: req.ip, transport: 'http' });
    reply.code(201);
    return { ...enrolled, endpoints: endpointsOf(platform.config, fastify, req, listening(), mqttOverWebSocket) };
  });

  app.post('/renew', {
    config: { auth: 'none' },
    schema: {
      operationId: 'renew',
      tags,
      security: [{ deviceCertificate: [] }],
      summary: "Renew a device's certificate",
      description:
        'Over HTTPS, with the certificate to renew as the TLS client certificate (no Authorization): the handshake proved the device holds its key. ' +
        'The CSR is of the same key or a new P-256 key. The answer is as for POST /enrol. The certificate presented stays valid until the device first connects with the new one; then it is revoked (superseded). ' +
        'Refusals: 401 `renewal.certificate_required` without a platform certificate, 403 `renewal.certificate_inactive` (revoked, expired) or `enrolment.registration_blocked`, and the CSR refusals of POST /enrol.',
      body: Type.Object({ csr: Type.String({ maxLength: 8192, description: 'PKCS#10, PEM (or base64 DER)' }) }, { additionalProperties: false }),
      response: { 201: Enrolled, ...problems(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    const presented = certificateOf(req, platform.trust.current());
    if (!presented) throw new AppError('renewal.certificate_required', 'Renew over HTTPS with the device certificate to renew as the TLS client certificate');
    const renewed = await identity.renew({ presented, csr: req.body.csr }, { actor: 'device', remote: req.ip, transport: 'http' });
    reply.code(201);
    return { ...renewed, endpoints: endpointsOf(platform.config, fastify, req, listening(), mqttOverWebSocket) };
  });

  // OCSP (RFC 6960 appendix A): POST with the DER request, or GET with it base64 in the path
  void fastify.register(async (scope) => {
    const ocspRequestType = 'application/ocsp-request';
    scope.addContentTypeParser(ocspRequestType, { parseAs: 'buffer', bodyLimit: 16 * 1024 }, (_req, body, done) => done(null, body));
    const ocspSchema = (get: boolean) => ({
      operationId: get ? 'getOcsp' : 'postOcsp',
      tags,
      summary: `OCSP responder of an organization's certificates${get ? ' (GET form)' : ''}`,
      description: `RFC 6960: ${get ? 'the DER request, base64 and URL-encoded, as the last path segment' : 'the DER request as the body (`application/ocsp-request`)'}. The answer (\`application/ocsp-response\`) is signed by the organization's issuing CA: good, revoked (time and reason) or unknown, valid an hour. \`openssl ocsp -issuer … -cert … -url …\` asks it.`,
      params: get ? Type.Object({ org: Type.String(), '*': Type.String({ title: 'request' }) }) : OrgParams,
      ...(get ? {} : { consumes: [ocspRequestType] }),
      response: { 200: Type.String({ contentMediaType: 'application/ocsp-response' }), ...problems(400, 404, ...(get ? [] : [413, 415])) },
    });
    const answer = async (reply: FastifyReply, org: string, der: Uint8Array) => reply.type('application/ocsp-response').header('cache-control', 'max-age=60').send(Buffer.from(await identity.ocsp(org, der)) as never);
    scope.post('/pki/orgs/:org/ocsp', { config: { auth: 'none' }, schema: ocspSchema(false) }, async (req, reply) => answer(reply, (req.params as { org: string }).org, (req.body as Buffer | undefined) ?? Buffer.alloc(0)));
    scope.get('/pki/orgs/:org/ocsp/*', { config: { auth: 'none' }, schema: ocspSchema(true) }, async (req, reply) => {
      const { org, '*': encoded } = req.params as { org: string; '*': string };
      return answer(reply, org, Buffer.from(decodeURIComponent(encoded), 'base64'));
    });
  });

  app.get('/pki/orgs/:org/crl', {
    config: { auth: 'none' },
    schema: {
      operationId: 'getCrl',
      tags,
      summary: "An organization's certificate revocation list",
      description: 'DER (application/pkix-crl), signed by its issuing CA, for anyone who checks its certificates; a new one (next update in a day) at each request.',
      params: OrgParams,
      response: { 200: Type.String({ contentMediaType: 'application/pkix-crl' }), ...problems(404) },
    },
  }, async (req, reply) => {
    const crl = await identity.publishedCrl(req.params.org);
    return reply.type('application/pkix-crl').send(Buffer.from(crl.der) as never);
  });
}
