import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../platform.js';
import { maxIntervalSeconds, minIntervalSeconds, offlineReasons } from '../../presence/index.js';
import { orgOf } from '../auth.js';
import { certificateOf, clientFromAuthorization } from '../credentials.js';
import { OrgIdParams, OrgParams, StringEnum, Timestamp, Uuid, problems } from '../schemas.js';

export const PresenceStateSchema = StringEnum(['online', 'idle', 'offline'], { description: '`online`: connected (MQTT); `idle`: reports on a schedule (HTTP, CoAP) and its interval has not passed; `offline`' });
const Reason = Type.Union([StringEnum(offlineReasons, { description: 'Why the device went offline' }), Type.Null()]);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

/** The presence a device list and a device carry beside the device. */
export const PresenceBriefSchema = Type.Object({
  state: PresenceStateSchema,
  since: Nullable(Timestamp),
  last_seen: Nullable(Timestamp),
  reason: Reason,
});

const DevicePresenceSchema = Type.Object({
  device_id: Uuid,
  state: PresenceStateSchema,
  since: Nullable(Timestamp),
  last_seen: Nullable(Timestamp),
  protocol: Nullable(Type.String()),
  node: Nullable(Type.String({ description: 'The process that saw the device last (FLEETWIRE_NODE_ID)' })),
  reason: Reason,
  interval: Nullable(Type.Integer({ description: 'The reporting interval the device declared, seconds' })),
  expires_at: Nullable(Timestamp),
  connections: Type.Array(Type.Object({ client_id: Type.String(), node: Type.String(), protocol: Type.String(), since: Timestamp })),
});

const HistorySchema = Type.Object({
  device_id: Uuid,
  from: Timestamp,
  to: Timestamp,
  initial: PresenceStateSchema,
  changes: Type.Array(Type.Object({ state: PresenceStateSchema, reason: Reason, protocol: Nullable(Type.String()), node: Nullable(Type.String()), at: Timestamp })),
  uptime_seconds: Type.Number({ description: 'Seconds of the range (up to now) the device was online or idle' }),
  uptime_fraction: Type.Number({ description: 'uptime_seconds over the length of the range up to now, 0 to 1' }),
  truncated: Type.Boolean({ description: 'More changes than one answer holds (1000): ask again from the last one' }),
});

const counts = { online: Type.Integer(), idle: Type.Integer(), offline: Type.Integer() };
const SummarySchema = Type.Object({
  total: Type.Integer(),
  presence: Type.Object(counts),
  enrolment: Type.Object({
    none: Type.Integer({ description: 'Devices created without a registration' }),
    pending: Type.Integer({ description: 'Registrations waiting for their device to enrol (again, after a reset)' }),
    enrolled: Type.Integer(),
    suspended: Type.Integer(),
    revoked: Type.Integer(),
  }),
  groups: Type.Array(Type.Object({ id: Uuid, name: Type.String(), devices: Type.Integer(), ...counts })),
});

const Time = Type.String({ description: 'Unix seconds (fractions allowed) or RFC 3339' });

/** Unix seconds or RFC 3339, as Unix ms. */
function parseTime(text: string, field: string): number {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) throw new AppError('presence.invalid_range', `${field} must be Unix seconds or an RFC 3339 time, got ${JSON.stringify(text)}`);
  return ms;
}

/** Presence: a device's heartbeat (device credentials), and what users read of it (`devices:read`). */
export function presenceRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { presence } = platform;

  // who sends a heartbeat is settled before its body is read: another device, a user or bad
  // credentials learn nothing from the body's validation
  const senders = new WeakMap<FastifyRequest, { id: string; orgId: string }>();
  const identifySender = async (req: FastifyRequest) => {
    const client = await clientFromAuthorization(req.headers.authorization, platform.auth, certificateOf(req, platform.trust.current()));
    // a user's token names no device: for it, as for another device's credentials, the device is not there
    if (client.kind !== 'device') throw new AppError('device.not_found', 'A heartbeat is sent with the credentials of the device it is for');
    const who = await platform.authorizer.identify(client.credential);
    if (!who.ok) throw who.reason === 'device_disabled' ? new AppError('message.device_disabled') : new AppError('auth.invalid_credentials', 'Unknown device credentials');
    if (who.device.id !== (req.params as { id: string }).id) throw new AppError('device.not_found', 'The credentials are those of another device');
    senders.set(req, who.device);
  };

  app.post('/devices/:id/presence', {
    config: { auth: 'device' },
    onRequest: identifySender,
    // a heartbeat with nothing to declare may come without a body (`curl -X POST`)
    preValidation: async (req) => {
      if (req.body === undefined) req.body = {};
    },
    schema: {
      operationId: 'sendPresenceHeartbeat',
      tags: ['presence'],
      summary: 'A device says it is there',
      description: `For a device that reports over HTTP or CoAP on a schedule and may have nothing to publish: it is \`idle\` (present) until 1.5 × \`interval\` passes without a message or heartbeat, then \`offline\`. \`interval\` (seconds, ${minIntervalSeconds} to ${maxIntervalSeconds}) is kept until the device declares another; without one, FLEETWIRE_PRESENCE_DEFAULT_INTERVAL. Device credentials only (\`Authorization: Device <secret>\`, Basic, or its platform certificate over HTTPS), of the device in the path. Every message the device publishes counts as a heartbeat too.`,
      security: [{ device: [] }, { deviceCertificate: [] }],
      params: Type.Object({ id: Type.String({ description: 'Device id' }) }),
      body: Type.Optional(Type.Object({ interval: Type.Optional(Type.Integer({ minimum: minIntervalSeconds, maximum: maxIntervalSeconds, description: 'Seconds until the next heartbeat or message at the latest' })) }, { additionalProperties: false })),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    presence.heartbeat(senders.get(req)!, req.params.id, 'http', req.body?.interval);
    return reply.code(204).send(null);
  });

  app.get('/orgs/:org/devices/:id/presence', {
    config: { action: 'devices:read' },
    schema: {
      operationId: 'getDevicePresence',
      tags: ['presence'],
      summary: "A device's presence",
      description: 'Online, idle or offline, since when, when it was last heard from, over which protocol and node, why it went offline, and its live MQTT connections. Needs `devices:read` in the organization (docs/permissions.md).',
      params: OrgIdParams,
      response: { 200: DevicePresenceSchema, ...problems(401, 403, 404) },
    },
  }, async (req) => presence.get(orgOf(req).orgId, req.params.id));

  // the interval as sent: validation coerces (null to 0 on the way through the union's integer), the service checks the range
  const sentInterval = new WeakMap<FastifyRequest, unknown>();
  app.put('/orgs/:org/devices/:id/presence', {
    config: { action: 'devices:write' },
    preValidation: async (req) => {
      sentInterval.set(req, (req.body as { interval?: unknown } | undefined)?.interval ?? null);
    },
    schema: {
      operationId: 'setDevicePresenceInterval',
      tags: ['presence'],
      summary: 'Give a device the interval it reports at',
      description: `For an HTTP or CoAP device that cannot declare its interval itself: it is \`idle\` until 1.5 × \`interval\` (seconds, ${minIntervalSeconds} to ${maxIntervalSeconds}) passes without a message, then \`offline\`. \`null\` (or no \`interval\`) goes back to FLEETWIRE_PRESENCE_DEFAULT_INTERVAL. A heartbeat that declares an interval replaces it. Needs \`devices:write\` in the organization (docs/permissions.md).`,
      params: OrgIdParams,
      body: Type.Object({ interval: Type.Optional(Type.Union([Type.Integer({ description: `Seconds, ${minIntervalSeconds} to ${maxIntervalSeconds}` }), Type.Null()], { description: 'null or left out: the default interval' })) }, { additionalProperties: false }),
      response: { 200: DevicePresenceSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => presence.setInterval(orgOf(req).orgId, req.params.id, sentInterval.get(req) as number | null));

  app.get('/orgs/:org/devices/:id/presence/history', {
    config: { action: 'devices:read' },
    schema: {
      operationId: 'getDevicePresenceHistory',
      tags: ['presence'],
      summary: "A device's presence changes and uptime over a time range",
      description: 'The changes in [from, to), oldest first (kept for FLEETWIRE_PRESENCE_RETENTION), the state at `from`, and how long the device was present (online or idle) in the range up to now. Default range: the last 24 hours. Needs `devices:read` in the organization (docs/permissions.md).',
      params: OrgIdParams,
      querystring: Type.Object({ from: Type.Optional(Time), to: Type.Optional(Time) }),
      response: { 200: HistorySchema, ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    // by default up to now, the changes made at this very millisecond included
    const to = req.query.to !== undefined ? parseTime(req.query.to, 'to') : platform.clock.now() + 1;
    const from = req.query.from !== undefined ? parseTime(req.query.from, 'from') : to - 86_400_000;
    return presence.history(orgOf(req).orgId, req.params.id, from, to);
  });

  app.get('/orgs/:org/fleet/summary', {
    config: { action: 'devices:read' },
    schema: {
      operationId: 'getFleetSummary',
      tags: ['presence'],
      summary: "The organization's devices counted by presence, enrolment and group",
      description: 'A device never heard from counts as offline. Needs `devices:read` in the organization (docs/permissions.md).',
      params: OrgParams,
      response: { 200: SummarySchema, ...problems(401, 403, 404) },
    },
  }, async (req) => presence.summary(orgOf(req).orgId));
}
