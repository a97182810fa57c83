import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Platform } from '../../platform.js';
import { AppError, isAppError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { orgOf } from '../auth.js';
import { certificateOf, clientFromAuthorization } from '../credentials.js';
import { Offset, OrgIdParams, OrgParams, Timestamp, problems } from '../schemas.js';
import { defaultTwin, maxReasonLength, twinSettingsBounds, type TwinDocument, type TwinUpdate, type Audience } from '../../twins/index.js';

const Section = Type.Record(Type.String(), Type.Unknown(), { description: 'A JSON object' });
const Stamps = Type.Record(Type.String(), Type.Unknown(), { description: 'The shape of the section, each leaf the time it last changed (milliseconds since the epoch)' });

export const TwinSchema = Type.Object({
  device_id: Type.String(),
  name: Type.String({ description: '`default` for the twin every device has' }),
  version: Type.Integer({ description: 'Goes up by one with every accepted change; 0 for a twin never written' }),
  desired: Section,
  reported: Section,
  delta: Type.Record(Type.String(), Type.Unknown(), { description: 'What desired asks that reported does not have yet (refused values left out)' }),
  tags: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Service-side only: never shown to the device' })),
  metadata: Type.Object({ desired: Stamps, reported: Stamps, tags: Type.Optional(Stamps) }),
  rejected: Type.Record(Type.String(), Type.Object({
    reason: Type.String(),
    value: Type.Unknown({ description: 'The desired value refused: a new desired value there asks again' }),
    version: Type.Integer(),
    at: Type.Integer({ description: 'Milliseconds since the epoch' }),
  }), { description: 'Desired values the device declared it cannot apply, by JSON pointer into desired' }),
  created_at: Type.Optional(Timestamp),
  updated_at: Type.Optional(Timestamp),
});

const UserUpdate = Type.Object({
  desired: Type.Optional(Section),
  tags: Type.Optional(Section),
}, { additionalProperties: false, description: 'JSON merge patches (RFC 7386): members are set, `null` removes one' });

const DeviceUpdate = Type.Object({
  reported: Type.Optional(Section),
  desired: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Only removals (`null` members): a device clears desired values it is done with' })),
  rejected: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String({ minLength: 1, maxLength: maxReasonLength }), Type.Null()]), { description: 'JSON pointer into desired → why the device cannot apply it; `null` withdraws the refusal' })),
  version: Type.Optional(Type.Integer({ minimum: 0, description: 'The version the device read: refused with 412 when the twin moved on (If-Match works too)' })),
}, { additionalProperties: false });

const NameParams = Type.Object({ org: Type.String(), id: Type.String(), name: Type.String() });
const DeviceParams = Type.Object({ id: Type.String() });
const DeviceNameParams = Type.Object({ id: Type.String(), name: Type.String() });
const IfMatch = Type.Object({ 'if-match': Type.Optional(Type.String({ description: 'The version read (its ETag, e.g. `"4"`): the update is refused with 412 when the twin moved on' })) });

const History = Type.Object({
  changes: Type.Array(Type.Object({
    version: Type.Integer(),
    actor: Type.Object({ kind: Type.Union([Type.Literal('user'), Type.Literal('device'), Type.Literal('system')]), id: Type.Optional(Type.String()) }),
    patch: Type.Record(Type.String(), Type.Unknown(), { description: 'The update as applied' }),
    at: Timestamp,
  })),
  next_version: Type.Optional(Type.Integer({ description: 'Pass as from_version for the next page, when changes follow' })),
});
const HistoryQuery = Type.Object({ from_version: Type.Integer({ minimum: 0, default: 0 }), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) });

const Settings = Type.Object({
  max_section_bytes: Type.Integer({ minimum: twinSettingsBounds.max_section_bytes.min, maximum: twinSettingsBounds.max_section_bytes.max, description: 'Largest desired, reported or tags section, as JSON bytes' }),
  max_depth: Type.Integer({ minimum: twinSettingsBounds.max_depth.min, maximum: twinSettingsBounds.max_depth.max, description: 'Deepest nesting of a section (the section itself is level 1)' }),
}, { additionalProperties: false });

/** The version an If-Match header names (`"4"`, `W/"4"` or `4`); `*` and absence name none. */
export function versionOf(ifMatch: string | undefined, bodyVersion?: number): number | undefined {
  if (ifMatch === undefined || ifMatch.trim() === '*') return bodyVersion;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(ifMatch);
  if (!m) throw new AppError('request.invalid', 'If-Match is the ETag of the twin read, e.g. "4"');
  const v = Number(m[1]);
  if (bodyVersion !== undefined && bodyVersion !== v) throw new AppError('request.invalid', 'If-Match and version disagree');
  return v;
}

function send(reply: FastifyReply, doc: TwinDocument): TwinDocument {
  void reply.header('etag', `"${doc.version}"`);
  return doc;
}

/**
 * Twins over HTTP: users and apps under /orgs/{org}/devices/{id}/twin (desired state and tags, the
 * history, fleet queries), devices at /devices/{id}/twin with their own credentials (reported
 * state, refusals) — the HTTP form of the MQTT topics `devices/<id>/twin[/<name>]/…`.
 */
export function twinRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { twins } = platform;
  const userActor = (req: FastifyRequest) => ({ kind: 'user' as const, id: req.principal!.userId });

  for (const named of [false, true]) {
    const path = named ? '/orgs/:org/devices/:id/twins/:name' : '/orgs/:org/devices/:id/twin';
    const which = named ? 'a named twin of a device' : "a device's default twin";
    const nameOf = (p: { name?: string }) => p.name ?? defaultTwin;
    app.get(path, {
      config: { action: 'twins:read' },
      schema: {
        operationId: named ? 'getNamedTwin' : 'getTwin',
        tags: ['twins'],
        summary: `Get ${which}`,
        description: 'Desired and reported state, the delta between them, tags, a timestamp per leaf, the refused desired values and the version (also the ETag). Needs `twins:read` in the organization (docs/permissions.md).',
        params: named ? NameParams : OrgIdParams,
        response: { 200: TwinSchema, ...problems(401, 403, 404) },
      },
    }, async (req, reply) => send(reply, await twins.get(orgOf(req).orgId, req.params.id, nameOf(req.params as { name?: string }), 'service')));

    app.patch(path, {
      config: { action: 'twins:write' },
      schema: {
        operationId: named ? 'updateNamedTwin' : 'updateTwin',
        tags: ['twins'],
        summary: `Change the desired state or tags of ${which}`,
        description: `JSON merge patches (RFC 7386): members are set, \`null\` removes one. With If-Match (the ETag read) the update is refused with 412 when the twin changed meanwhile; nothing is partly applied. The device is sent the new delta at once when connected, and when it next connects otherwise.${named ? ' A named twin is made by its first update (16 per device at most).' : ''} Needs \`twins:write\` in the organization (docs/permissions.md).`,
        params: named ? NameParams : OrgIdParams,
        headers: IfMatch,
        body: UserUpdate,
        response: { 200: TwinSchema, ...problems(400, 401, 403, 404, 412, 413) },
      },
    }, async (req, reply) => {
      const { twin } = await twins.update(orgOf(req).orgId, req.params.id, nameOf(req.params as { name?: string }), req.body as TwinUpdate, { actor: userActor(req), version: versionOf(req.headers['if-match']) });
      return send(reply, twins.view(twin, 'service'));
    });

    app.get(`${path}/history`, {
      config: { action: 'twins:read' },
      schema: {
        operationId: named ? 'getNamedTwinHistory' : 'getTwinHistory',
        tags: ['twins'],
        summary: `The changes of ${which}`,
        description: 'Every accepted change from `from_version` on, oldest first: the version it made, who made it (a user, the device, or the system) and the patch as applied. Kept for FLEETWIRE_TWIN_HISTORY_RETENTION. Needs `twins:read` in the organization (docs/permissions.md).',
        params: named ? NameParams : OrgIdParams,
        querystring: HistoryQuery,
        response: { 200: History, ...problems(400, 401, 403, 404) },
      },
    }, async (req) => {
      const changes = await twins.history(orgOf(req).orgId, req.params.id, nameOf(req.params as { name?: string }), req.query.from_version, req.query.limit + 1);
      const more = changes.length > req.query.limit;
      const page = more ? changes.slice(0, req.query.limit) : changes;
      return { changes: page, ...(more ? { next_version: changes[req.query.limit]!.version } : {}) };
    });
  }

  app.get('/orgs/:org/devices/:id/twins', {
    config: { action: 'twins:read' },
    schema: {
      operationId: 'listDeviceTwins',
      tags: ['twins'],
      summary: "A device's twins",
      description: 'The default twin and the named ones, with their versions. Needs `twins:read` in the organization (docs/permissions.md).',
      params: OrgIdParams,
      response: { 200: Type.Object({ twins: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer(), updated_at: Type.Optional(Timestamp) })) }), ...problems(401, 403, 404) },
    },
  }, async (req) => ({ twins: await twins.list(orgOf(req).orgId, req.params.id) }));

  app.get('/orgs/:org/twins', {
    config: { action: 'twins:read' },
    schema: {
      operationId: 'queryTwins',
      tags: ['twins'],
      summary: 'Find twins across the fleet',
      description:
        'Every `where` condition must hold: `<section>.<path> <op> <value>` with section desired, reported or tags, op one of `= != < <= > >=`, or `<section>.<path> exists|missing`. A value is JSON when it parses as JSON (`14`, `true`, `"14"`), another field when it names one (`desired.mode != reported.mode`), text otherwise (`reported.firmware.version = 1.4.2`). Path keys are letters, digits, `_` and `-`. Sorted by device id. Needs `twins:read` in the organization (docs/permissions.md).',
      params: OrgParams,
      querystring: Type.Object({
        where: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 8 })])),
        name: Type.Optional(Type.String({ maxLength: 64, description: 'Only twins of this name (`default` for the default twin)' })),
        offset: Offset,
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
      }),
      response: { 200: Type.Object({ total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer(), twins: Type.Array(TwinSchema) }), ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    const where = req.query.where === undefined ? [] : [req.query.where].flat();
    const { total, items } = await twins.query(orgOf(req).orgId, { where, ...(req.query.name !== undefined ? { name: req.query.name } : {}), offset: req.query.offset, limit: req.query.limit });
    return { total, offset: req.query.offset, limit: req.query.limit, twins: items };
  });

  app.get('/orgs/:org/twin-settings', {
    config: { action: 'twins:read' },
    schema: { operationId: 'getTwinSettings', tags: ['twins'], summary: "The organization's twin limits", description: 'Needs `twins:read` in the organization (docs/permissions.md).', params: OrgParams, response: { 200: Settings, ...problems(401, 403, 404) } },
  }, async (req) => twins.settings(orgOf(req).orgId));

  app.put('/orgs/:org/twin-settings', {
    config: { action: 'twins:write' },
    schema: {
      operationId: 'setTwinSettings',
      tags: ['twins'],
      summary: "Change the organization's twin limits",
      description: 'Applies to updates from now on (every process within 10 s); twins already larger are kept, and their next update must bring them within the limits. Needs `twins:write` in the organization (docs/permissions.md).',
      params: OrgParams,
      body: Settings,
      response: { 200: Settings, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => twins.setSettings(orgOf(req).orgId, req.body));

  // the device's own side: its credentials, its own twins. A user's token is taken too (the
  // twin as the service side sees it, reading only), as on the channels' message paths; who
  // may not see the device gets 404 before the body is looked at.
  interface Caller { orgId: string; deviceId: string; audience: Audience; user?: true }
  const callers = new WeakMap<FastifyRequest, Caller>();
  const identifyCaller = async (req: FastifyRequest): Promise<void> => {
    const id = (req.params as { id: string }).id;
    const client = await clientFromAuthorization(req.headers.authorization, platform.auth, certificateOf(req, platform.trust.current()));
    if (client.kind === 'user') {
      const orgId = isUuid(id) ? await twins.orgOfDevice(id) : undefined;
      try {
        if (!orgId) throw new AppError('org.not_found');
        await platform.orgs.authorize(client.principal, orgId, 'twins:read');
      } catch (e) {
        if (isAppError(e) && e.code === 'org.not_found') throw new AppError('device.not_found');
        throw e;
      }
      callers.set(req, { orgId, deviceId: id, audience: 'service', user: true });
      return;
    }
    if (client.kind !== 'device') throw new AppError('auth.required');
    const who = await platform.authorizer.identify(client.credential);
    if (!who.ok) throw new AppError(who.reason === 'device_disabled' ? 'message.device_disabled' : 'auth.invalid_credentials');
    // another device's twin does not exist for this one
    if (who.device.id !== id) throw new AppError('device.not_found', 'a device reads and writes its own twin only');
    callers.set(req, { orgId: who.device.orgId, deviceId: who.device.id, audience: 'device' });
  };
  const deviceOf = (req: FastifyRequest): Caller => callers.get(req)!;
  for (const named of [false, true]) {
    const path = named ? '/devices/:id/twin/:name' : '/devices/:id/twin';
    const nameOf = (p: { name?: string }) => p.name ?? defaultTwin;
    app.get(path, {
      config: { auth: 'device' },
      preValidation: identifyCaller,
      schema: {
        operationId: named ? 'getOwnNamedTwin' : 'getOwnTwin',
        tags: ['twins'],
        summary: `A device reads its ${named ? 'named twin' : 'twin'}`,
        description: 'Device credentials (`Authorization: Device <secret>`, Basic `<device id>:<secret>`, or its platform certificate over HTTPS): tags are not shown. A user\'s Bearer token with `twins:read` in the device\'s organization reads it too, tags included.',
        params: named ? DeviceNameParams : DeviceParams,
        response: { 200: TwinSchema, ...problems(401, 403, 404) },
      },
    }, async (req, reply) => {
      const { orgId, deviceId, audience } = deviceOf(req);
      return send(reply, await twins.get(orgId, deviceId, nameOf(req.params as { name?: string }), audience, audience === 'device'));
    });
    app.patch(path, {
      config: { auth: 'device' },
      preValidation: identifyCaller,
      schema: {
        operationId: named ? 'reportOwnNamedTwin' : 'reportOwnTwin',
        tags: ['twins'],
        summary: `A device reports its state${named ? ' to a named twin' : ''}`,
        description: '`reported` is a JSON merge patch (RFC 7386). `rejected` declares desired values the device cannot apply (by JSON pointer, with a reason) so that they leave the delta until desired changes there; `desired` may only remove members (clear what the device is done with). Device credentials as for GET.',
        params: named ? DeviceNameParams : DeviceParams,
        headers: IfMatch,
        body: DeviceUpdate,
        response: { 200: TwinSchema, ...problems(400, 401, 403, 404, 412, 413, 429) },
      },
    }, async (req, reply) => {
      const { orgId, deviceId, user } = deviceOf(req);
      if (user) throw new AppError('auth.forbidden', 'users and apps change desired state and tags at PATCH /orgs/{org}/devices/{id}/twin; this path is the device\'s');
      const { version, ...update } = req.body;
      const { twin } = await twins.update(orgId, deviceId, nameOf(req.params as { name?: string }), update as TwinUpdate, { actor: { kind: 'device', id: deviceId }, version: versionOf(req.headers['if-match'], version), trustedDevice: true });
      return send(reply, twins.view(twin, 'device'));
    });
  }
}
