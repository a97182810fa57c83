import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { WebSocket } from 'ws';
import { Type, type Static } from 'typebox';
import { AppError, isAppError } from '../../core/errors.js';
import type { Platform } from '../../platform.js';
import type { Principal } from '../../auth/service.js';
import { membershipTypes, parseTypeFilter, typeMatches, type FleetEvent } from '../../events/index.js';
import type { EventQuery } from '../../events/store.js';
import { bearerToken, orgOf } from '../auth.js';
import { OrgParams, PageQuery, StringEnum, Timestamp, Uuid, pageOf, problems } from '../schemas.js';
import { closeCodes as close } from '../websocket-errors.js';
import { truncateUtf8 } from '../../core/text.js';

export const EventSchema = Type.Object({
  id: Uuid,
  org_id: Uuid,
  type: Type.String({ description: 'Stable dotted type, e.g. `device.created` (docs/events.md lists them)' }),
  time: Timestamp,
  actor: Type.Object({ kind: StringEnum(['user', 'device', 'system']), id: Type.Union([Type.String(), Type.Null()]) }),
  subject: Type.Object({ kind: Type.String({ description: '`device`, `channel`, `group`, `org`, `user`, …' }), id: Type.String() }),
  data: Type.Record(Type.String(), Type.Unknown()),
});

const typeDescription = 'Event types, comma-separated; a prefix ends in `.*` (`device.*`), `*` is every type';
const LiveFilter = Type.Object({
  type: Type.Optional(Type.String({ maxLength: 2048, description: typeDescription })),
  device: Type.Optional(Uuid),
});
const ListFilter = Type.Intersect([
  PageQuery,
  LiveFilter,
  Type.Object({
    actor: Type.Optional(Type.String({ maxLength: 64, description: 'The user (or device) who caused the event' })),
    from: Type.Optional(Timestamp),
    to: Type.Optional(Timestamp),
    order: StringEnum(['desc', 'asc'], { default: 'desc', description: 'Newest first (default) or oldest first' }),
  }),
]);
const WsQuery = Type.Intersect([LiveFilter, Type.Object({ token: Type.Optional(Type.String({ description: 'The access token or personal access token, when the client cannot send `Authorization: Bearer`' })) })]);

/** The type filter of a query, or 400. */
function typesOf(text: string | undefined): EventQuery['types'] {
  if (text === undefined) return undefined;
  const parsed = parseTypeFilter(text);
  if (!parsed.ok) throw new AppError('request.invalid', parsed.error);
  return parsed;
}

/** A time given in any ISO 8601 form, as stored (UTC, milliseconds) so that both databases compare alike. */
function instant(text: string | undefined, name: string): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new AppError('request.invalid', `${name}: an ISO 8601 time`);
  return new Date(ms).toISOString();
}

/** How often open event sockets are authorised again anyway, ms. */
const recheckIntervalMs = 60_000;

/** Close reasons are at most 123 bytes (RFC 6455 §5.5). */
function reason(text: string): string {
  return truncateUtf8(text, 123);
}

interface Watcher {
  socket: WebSocket;
  orgId: string;
  principal: Principal;
  /** The token it came with: a personal access token is checked again (it may have been revoked). */
  token: string;
  types: EventQuery['types'];
  device: string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    eventWatch?: Omit<Watcher, 'socket'>;
  }
}

/** `GET /orgs/{org}/events` (stored) and `/ws/orgs/{org}/events` (live, on any node). */
export function eventRoutes(fastify: FastifyInstance, platform: Platform): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { events } = platform;

  app.get('/orgs/:org/events', {
    config: { action: 'events:read' },
    schema: {
      operationId: 'listEvents',
      tags: ['events'],
      summary: "The organization's fleet events and audit log",
      description: 'Lifecycle facts (devices connected, enrolled, disabled…) and every change a user made through the API, newest first. Filter by `type` (`device.*` for a prefix, commas for several), `device` (the subject), `actor` (a user id) and time (`from` inclusive, `to` exclusive). Events are kept for FLEETWIRE_EVENT_RETENTION. Needs `events:read` in the organization (docs/permissions.md).',
      params: OrgParams,
      querystring: ListFilter,
      response: { 200: pageOf('events', EventSchema), ...problems(400, 401, 403, 404) },
    },
  }, async (req) => {
    const q = req.query as Static<typeof ListFilter>;
    const query: EventQuery = { offset: q.offset, limit: q.limit, order: q.order };
    const types = typesOf(q.type);
    if (types) query.types = types;
    if (q.device !== undefined) query.device = q.device;
    if (q.actor !== undefined) query.actor = q.actor;
    const from = instant(q.from, 'from');
    const to = instant(q.to, 'to');
    if (from !== undefined) query.from = from;
    if (to !== undefined) query.to = to;
    const { total, items } = await events.list(orgOf(req).orgId, query);
    return { total, offset: q.offset, limit: q.limit, events: items };
  });

  // --- live, over WebSocket
  const maxBuffered = platform.config.wsMaxBuffered;
  /** Open sockets by organization. */
  const watchers = new Map<string, Set<Watcher>>();
  const remove = (w: Watcher) => {
    const set = watchers.get(w.orgId);
    set?.delete(w);
    if (set?.size === 0) watchers.delete(w.orgId);
  };
  const deliver = (event: FleetEvent) => {
    const set = watchers.get(event.org_id);
    if (!set) return;
    let frame: string | undefined;
    for (const w of set) {
      if (w.types && !typeMatches(w.types, event.type)) continue;
      if (w.device !== undefined && (event.subject.kind !== 'device' || event.subject.id !== w.device)) continue;
      if (w.socket.readyState !== w.socket.OPEN) continue;
      if (w.socket.bufferedAmount > maxBuffered) {
        remove(w);
        w.socket.close(close.tryAgainLater, 'slow consumer');
        continue;
      }
      frame ??= JSON.stringify(event);
      w.socket.send(frame);
    }
  };
  /** A socket whose user may no longer read the organization's events (removed, role changed, organization deleted) is closed with 4403. */
  const recheck = (orgId: string) => {
    for (const w of watchers.get(orgId) ?? []) {
      // a personal access token may have been revoked or expired since; an access token's session is followed on its own
      const current = w.principal.scope ? platform.auth.authenticate(w.token) : Promise.resolve(w.principal);
      current.then((p) => platform.orgs.authorize(p, orgId, 'events:read')).then(
        () => {},
        (e: unknown) => {
          if (!isAppError(e) || !watchers.get(orgId)?.has(w)) return;
          remove(w);
          w.socket.close(close.accessWithdrawn, reason(`${e.code}: access withdrawn`));
        },
      );
    }
  };
  const stopEvents = events.onEvent((event) => {
    deliver(event);
    if (membershipTypes.has(event.type)) recheck(event.org_id);
  });
  // what no event announces (a platform admin's role taken away…) is caught within a minute
  const periodic = setInterval(() => [...watchers.keys()].forEach(recheck), recheckIntervalMs);
  periodic.unref();
  // a socket lives no longer than the login session of the access token it was opened with
  const stopSessions = platform.sessions.onEnded((ended) => {
    for (const set of watchers.values()) {
      for (const w of set) {
        const p = w.principal;
        if (p.sessionId === undefined) continue;
        if ('userId' in ended ? p.userId !== ended.userId : !ended.sessionIds.includes(p.sessionId)) continue;
        remove(w);
        w.socket.close(close.sessionEnded, reason('auth.session_ended: the session of this access token ended'));
      }
    }
  });
  app.addHook('onClose', async () => {
    clearInterval(periodic);
    stopEvents();
    stopSessions();
  });

  /** Authorises before the upgrade, so that refusals are ordinary HTTP problem responses. */
  const authorize = async (req: FastifyRequest) => {
    const q = req.query as Static<typeof WsQuery>;
    const token = bearerToken(req) ?? q.token;
    if (!token) throw new AppError('auth.required', 'Send a user token: Authorization: Bearer <token>, or ?token=<token>');
    const principal = await platform.auth.authenticate(token);
    const { org } = req.params as { org: string };
    const access = await platform.orgs.authorize(principal, org, 'events:read');
    req.eventWatch = { orgId: access.orgId, principal, token, types: typesOf(q.type), device: q.device };
  };

  app.get('/ws/orgs/:org/events', {
    websocket: true,
    // the route reads the user's token itself: from the header, or the query where a browser cannot set one
    config: { auth: 'device' },
    preHandler: authorize,
    schema: {
      tags: ['events'],
      summary: "Follow the organization's fleet events live over WebSocket",
      description: 'Upgrade to WebSocket with a user token (`Authorization: Bearer <token>` or `?token=`) allowing `events:read`; each event recorded from then on, on any node, arrives as a JSON text frame (the shape `GET /orgs/{org}/events` lists). Filters: `type` (`device.*`, commas for several) and `device`. Slow consumers are closed with 1013; the socket closes with 4401 when the login session of its access token ends.',
      params: OrgParams,
      querystring: WsQuery,
      response: problems(400, 401, 403, 404),
    },
  }, (socket: WebSocket, req: FastifyRequest) => {
    const w: Watcher = { socket, ...req.eventWatch! };
    let set = watchers.get(w.orgId);
    if (!set) watchers.set(w.orgId, (set = new Set()));
    set.add(w);
    // frames from the client mean nothing here
    socket.on('message', () => socket.close(close.policy, 'this socket only receives events'));
    socket.on('close', () => remove(w));
    socket.on('error', (e) => req.log.info({ err: e }, 'WebSocket error'));
  });
}

