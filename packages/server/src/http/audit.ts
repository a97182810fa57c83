import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Platform } from '../platform.js';
import type { EventType, Subject } from '../events/index.js';

/**
 * The audit log: every change a user (or a personal access token) makes through the API is a fleet
 * event of the organization it was made in, with the user as actor. A route's event type comes from
 * its `config.event`, else from the table below, else it is `api.change` (method, route, status):
 * no mutating route is left out. Accepting or declining an invitation is the inviting
 * organization's; other changes outside any organization (your own account, tokens, sessions,
 * signing up) belong to no organization's stream.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The fleet event a successful call records (http/audit.ts): a type, a choice by the request,
     * or `service` when the service records a richer event of its own.
     */
    event?: EventSpec;
  }
}

export type EventSpec = EventType | 'service' | ((call: AuditedCall) => EventType[]);

export interface AuditedCall {
  body: Record<string, unknown>;
  status: number;
  params: Record<string, string>;
}

const mutating = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Status changes are their own events: `PATCH {"status": "disabled"}` disables the device. */
function devicePatch(call: AuditedCall): EventType[] {
  const { status, ...rest } = call.body;
  const types: EventType[] = [];
  if (Object.keys(rest).length > 0) types.push('device.updated');
  if (status === 'enabled') types.push('device.enabled');
  else if (status === 'disabled') types.push('device.disabled');
  return types.length > 0 ? types : ['device.updated'];
}

/** The event types of the routes there were before `config.event`; new routes say theirs in their config. */
export const routeEvents: Record<string, EventSpec> = {
  'POST /orgs': 'org.created',
  'PATCH /orgs/:org': 'org.updated',
  'DELETE /orgs/:org': 'org.deleted',
  'POST /orgs/:org/members': (c) => [c.status === 201 ? 'member.added' : 'invitation.created'],
  'PATCH /orgs/:org/members/:user_id': 'member.updated',
  'DELETE /orgs/:org/members/:user_id': 'member.removed',
  'DELETE /orgs/:org/invitations/:id': 'invitation.deleted',
  'POST /orgs/:org/devices': 'device.created',
  'POST /orgs/:org/devices/bulk': 'device.created',
  'PATCH /orgs/:org/devices/:id': devicePatch,
  'POST /orgs/:org/devices/:id/enable': 'device.enabled',
  'POST /orgs/:org/devices/:id/disable': 'device.disabled',
  'POST /orgs/:org/devices/:id/secret': 'device.secret_rotated',
  'DELETE /orgs/:org/devices/:id': 'device.deleted',
  'POST /orgs/:org/channels': 'channel.created',
  'POST /orgs/:org/channels/bulk': 'channel.created',
  'PATCH /orgs/:org/channels/:id': 'channel.updated',
  'DELETE /orgs/:org/channels/:id': 'channel.deleted',
  'POST /orgs/:org/groups': 'group.created',
  'PATCH /orgs/:org/groups/:id': 'group.updated',
  'DELETE /orgs/:org/groups/:id': 'group.deleted',
  'POST /orgs/:org/groups/:id/devices': 'group.updated',
  'DELETE /orgs/:org/groups/:id/devices': 'group.updated',
  'POST /orgs/:org/connections': 'connection.created',
  'DELETE /orgs/:org/connections': 'connection.deleted',
  'DELETE /orgs/:org/dead-letters/:id': 'dead_letter.deleted',
  'DELETE /orgs/:org/dead-letters': 'dead_letter.deleted',
  'POST /orgs/:org/registrations': 'registration.created',
  'POST /orgs/:org/registrations/bulk': 'registration.created',
  'DELETE /orgs/:org/registrations/:id': 'registration.deleted',
  'POST /orgs/:org/manufacturer-cas': 'manufacturer_ca.created',
  'PATCH /orgs/:org/manufacturer-cas/:id': 'manufacturer_ca.updated',
  'DELETE /orgs/:org/manufacturer-cas/:id': 'manufacturer_ca.deleted',
  'POST /orgs/:org/enrolment-tokens': 'enrolment_token.created',
  'DELETE /orgs/:org/enrolment-tokens/:id': 'enrolment_token.deleted',
  // identity/service.ts records certificate.revoked (with the device as subject) when it revokes
  'POST /orgs/:org/certificates/:serial/revoke': 'service',
  // twins/service.ts changes are recorded as twin.updated (and twin.delta), whoever made them (platform.ts)
  'PATCH /orgs/:org/devices/:id/twin': 'service',
  'PATCH /orgs/:org/devices/:id/twins/:name': 'service',
};
routeEvents['POST /users/me/invitations/:id/accept'] = 'member.added';
routeEvents['POST /users/me/invitations/:id/decline'] = 'invitation.deleted';
for (const action of ['suspend', 'resume', 'reset', 'revoke']) routeEvents[`POST /orgs/:org/registrations/:id/${action}`] = 'registration.updated';

/** The subject kind of a path segment (`devices/:id` is a device). */
const kindOfSegment: Record<string, string> = {
  orgs: 'org',
  devices: 'device',
  channels: 'channel',
  groups: 'group',
  members: 'user',
  invitations: 'invitation',
  registrations: 'registration',
  'manufacturer-cas': 'manufacturer_ca',
  'enrolment-tokens': 'enrolment_token',
  'dead-letters': 'dead_letter',
  certificates: 'certificate',
  connections: 'connection',
};
/** Bulk responses: the key of the created items. */
const bulkKeys = ['devices', 'channels', 'registrations'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * What a call changed: the resource its path names (`…/devices/:id`), else those its response
 * created (an `id`, or a bulk list), else the organization.
 */
function subjectsOf(route: string, params: Record<string, string>, orgId: string, response: unknown, typeKind: string | undefined): Subject[] {
  const parts = route.split('/');
  for (let i = parts.length - 1; i > 0; i--) {
    const p = parts[i]!;
    if (!p.startsWith(':') || p === ':org') continue;
    const id = params[p.slice(1)];
    if (id !== undefined) return [{ kind: kindOfSegment[parts[i - 1]!] ?? parts[i - 1]!, id }];
  }
  const last = [...parts].reverse().find((p) => p && !p.startsWith(':') && p !== 'bulk') ?? 'org';
  if (isObject(response)) {
    // what was made is what the event type names (an invitation made on …/members), else what the path names
    if (typeof response.id === 'string') return [{ kind: typeKind ?? kindOfSegment[last] ?? last, id: response.id }];
    if (typeof response.user_id === 'string') return [{ kind: 'user', id: response.user_id }];
    for (const key of bulkKeys) {
      const items = response[key];
      if (Array.isArray(items)) return items.filter(isObject).filter((x) => typeof x.id === 'string').map((x) => ({ kind: kindOfSegment[key]!, id: x.id as string }));
    }
  }
  return [{ kind: 'org', id: orgId }];
}

/** What a response says, when it is JSON: only ids are taken from it (never secrets). */
function parsedBody(reply: FastifyReply, payload: unknown): unknown {
  if (typeof payload !== 'string' || payload.length === 0) return undefined;
  const type = reply.getHeader('content-type');
  if (typeof type !== 'string' || !type.includes('json')) return undefined;
  try {
    return JSON.parse(payload);
  } catch {
    return undefined;
  }
}

/** Data every audit event carries: what was called, by which token, from where; for updates, which fields (never their values). */
function callData(req: FastifyRequest, route: string, status: number): Record<string, unknown> {
  const body = isObject(req.body) ? req.body : {};
  return {
    method: req.method,
    route,
    status,
    request_id: req.id,
    ...(req.principal?.scope ? { token_id: req.principal.scope.tokenId } : {}),
    ...(req.method === 'PATCH' ? { fields: Object.keys(body) } : {}),
    ...(route.endsWith('/connections') ? { device_ids: body.device_ids, channel_ids: body.channel_ids, types: body.types } : {}),
    ...(route.endsWith('/groups/:id/devices') ? { device_ids: body.device_ids, change: req.method === 'POST' ? 'added' : 'removed' } : {}),
  };
}

/** The organization of one of the caller's invitations (looked up before the call: afterwards it is gone). */
async function invitationOrg(req: FastifyRequest, platform: Platform): Promise<string | undefined> {
  const id = (req.params as { id?: string }).id;
  for (let offset = 0; req.principal && offset < 10_000; offset += 1000) {
    const page = await platform.orgs.invitationsOf(req.principal, offset, 1000);
    const found = page.items.find((i) => i.id === id);
    if (found) return found.org_id;
    if (offset + page.items.length >= page.total) break;
  }
  return undefined;
}

/** Routes outside /orgs/{org} whose change belongs to an organization all the same, and how to find it. */
const orgBeforeCall: Record<string, (req: FastifyRequest, platform: Platform) => Promise<string | undefined>> = {
  'POST /users/me/invitations/:id/accept': invitationOrg,
  'POST /users/me/invitations/:id/decline': invitationOrg,
};

export function installAudit(app: FastifyInstance, platform: Platform): void {
  /** The organization a call outside /orgs/{org} changes (orgBeforeCall). */
  const orgOfCall = new WeakMap<FastifyRequest, string>();
  app.addHook('preHandler', async (req) => {
    const find = req.routeOptions.url !== undefined && req.principal ? orgBeforeCall[`${req.method} ${req.routeOptions.url}`] : undefined;
    if (!find) return;
    const orgId = await find(req, platform).catch((e: unknown) => req.log.error({ err: e }, 'could not find the organization of an audited call'));
    if (orgId) orgOfCall.set(req, orgId);
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (!mutating.has(req.method) || reply.statusCode >= 400 || !req.principal) return payload;
    const cfg = req.routeOptions.config;
    const route = req.routeOptions.url;
    if (route === undefined || cfg.auth === 'none' || cfg.auth === 'device') return payload;
    try {
      const spec = cfg.event ?? routeEvents[`${req.method} ${route}`] ?? 'api.change';
      if (spec === 'service') return payload;
      const response = parsedBody(reply, payload);
      // the organization the call ran in; creating one: the new one
      const orgId = req.orgAccess?.orgId ?? orgOfCall.get(req) ?? (route === '/orgs' && isObject(response) && typeof response.id === 'string' ? response.id : undefined);
      if (orgId === undefined) return payload;
      const params = (req.params ?? {}) as Record<string, string>;
      const types = typeof spec === 'function' ? spec({ body: isObject(req.body) ? req.body : {}, status: reply.statusCode, params }) : [spec];
      const data = callData(req, route, reply.statusCode);
      const actor = { kind: 'user' as const, id: req.principal.userId };
      // who joined: the caller
      const subjects = route === '/users/me/invitations/:id/accept' ? [{ kind: 'user', id: req.principal.userId }] : subjectsOf(route, params, orgId, response, types[0] === 'api.change' ? undefined : types[0]?.slice(0, types[0].indexOf('.')));
      for (const subject of subjects) {
        for (const type of types) platform.events.record({ orgId, type, actor, subject, data });
      }
    } catch (e) {
      req.log.error({ err: e }, 'could not record the audit event of a call');
    }
    return payload;
  });
}
