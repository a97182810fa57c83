// Fleet events over MQTT (docs/events.md). An app connects with the user name `token` and a user's
// access token or personal access token as the password, with a clean start (nothing is kept for
// it), and subscribes to `orgs/<org id>/events/#` — or narrower: the topic of an event is
// `orgs/<org>/events/<kind>/<verb>/<subject id>` for type `<kind>.<verb>`, so `…/events/device/#`
// is every device event and `…/events/+/+/<device id>` one device's. Such a connection only
// subscribes (`events:read` in the organization); events reach it from the live stream of every node.
import { randomBytes } from 'node:crypto';
import { isAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseAddress } from '../core/address.js';
import type { AuthService, Principal } from '../auth/service.js';
import type { OrgService } from '../orgs/service.js';
import type { SessionRegistry } from '../auth/sessions.js';
import { membershipTypes, type EventLog, type FleetEvent } from '../events/index.js';
import { splitKey, type Broker } from './broker.js';
import type { ConnectRequest, PolicyClient, SubscribeVerdict } from './policy.js';
import { topicMatches } from './topics.js';
import { rc, type BrokerMessage, type ClientIdentity } from './types.js';

/** The user name of a connection that follows fleet events with a user token. */
export const tokenUsername = 'token';

/** The topic an event is sent on. */
export function eventTopic(event: FleetEvent): string {
  const dot = event.type.indexOf('.');
  // a subject id is one topic level: never a separator or a wildcard [MQTT-4.7.1-1], never U+0000 [MQTT-4.7.3-2]
  const safe = (s: string) => (s.length > 0 && !/[/+#]/.test(s) && !s.includes('\u0000') ? s : '_');
  return `orgs/${event.org_id}/events/${event.type.slice(0, dot)}/${event.type.slice(dot + 1)}/${safe(event.subject.id)}`;
}

export interface EventTopics {
  /** Authenticates a connection with a user token; undefined when the request is not one. */
  authenticate(req: ConnectRequest): Promise<{ ok: true; identity: ClientIdentity } | { ok: false; reasonCode: number; reason: string }> | undefined;
  /** A SUBSCRIBE of a user connection, or to an `orgs/…` filter (undefined: neither). */
  subscribe(client: PolicyClient, filter: string): Promise<SubscribeVerdict> | undefined;
  close(): void;
}

export interface EventTopicDeps {
  events: EventLog;
  auth: AuthService;
  orgs: OrgService;
  sessions: SessionRegistry;
  broker: () => Broker;
  log: Logger;
}

export function eventTopics(deps: EventTopicDeps): EventTopics {
  /** The principal of each user connection, by its identity object (never stored: such a session is never kept). */
  const principals = new WeakMap<ClientIdentity, Principal>();
  /** The personal access token of a connection that came with one: checked again, it may be revoked. */
  const tokens = new WeakMap<ClientIdentity, string>();
  /** The client ids that subscribed to an organization's events on this node (pruned as they go). */
  const watchers = new Map<string, Set<string>>();

  const deliver = (event: FleetEvent) => {
    const ids = watchers.get(event.org_id);
    if (!ids) return;
    const broker = deps.broker();
    let message: BrokerMessage | undefined;
    for (const clientId of ids) {
      const session = broker.sessions.get(clientId);
      if (!session || session.identity.kind !== 'user') {
        ids.delete(clientId);
        continue;
      }
      message ??= { topic: eventTopic(event), payload: Buffer.from(JSON.stringify(event)), qos: 1, retain: false, properties: { contentType: 'application/json' } };
      let matched = false;
      for (const [key, opts] of session.subscriptions) {
        // a share group is served as a plain subscription: every member follows the whole stream
        const { filter } = splitKey(key);
        if (!topicMatches(filter, message.topic)) continue;
        matched = true;
        session.deliver(message, opts.qos === 0 ? 0 : 1, false, opts.subscriptionId !== undefined ? [opts.subscriptionId] : undefined);
        break;
      }
      if (!matched && ![...session.subscriptions.keys()].some((k) => splitKey(k).filter.startsWith(`orgs/${event.org_id}/`))) ids.delete(clientId);
    }
    if (ids.size === 0) watchers.delete(event.org_id);
  };
  /** Connections whose user may no longer read the organization's events are cut off. */
  const recheck = (orgId: string) => {
    const broker = deps.broker();
    for (const clientId of watchers.get(orgId) ?? []) {
      const session = broker.sessions.get(clientId);
      const principal = session?.identity.kind === 'user' ? principals.get(session.identity) : undefined;
      if (!session || !principal) continue;
      const token = tokens.get(session.identity);
      const current = token !== undefined ? deps.auth.authenticate(token) : Promise.resolve(principal);
      current.then((p) => deps.orgs.authorize(p, orgId, 'events:read')).then(
        () => {},
        (e: unknown) => {
          if (!isAppError(e) || broker.sessions.get(clientId) !== session) return;
          watchers.get(orgId)?.delete(clientId);
          broker.cutOff(session, rc.notAuthorized, `${e.code}: may no longer read the events of ${orgId}`, 'session');
        },
      );
    }
  };
  const stopEvents = deps.events.onEvent((event) => {
    deliver(event);
    if (membershipTypes.has(event.type)) recheck(event.org_id);
  });
  const periodic = setInterval(() => [...watchers.keys()].forEach(recheck), 60_000);
  periodic.unref();

  // a connection lives no longer than the login session of the access token it came with
  const stopSessions = deps.sessions.onEnded((ended) => {
    const broker = deps.broker();
    for (const session of broker.sessions.values()) {
      const p = session.identity.kind === 'user' ? principals.get(session.identity) : undefined;
      if (!p || p.sessionId === undefined) continue;
      if ('userId' in ended ? p.userId !== ended.userId : !ended.sessionIds.includes(p.sessionId)) continue;
      broker.cutOff(session, rc.notAuthorized, 'the session of this access token ended', 'session');
    }
  });

  return {
    authenticate(req) {
      if (req.username !== tokenUsername || req.meta.certificateCn) return undefined;
      return (async () => {
        if (!req.cleanStart) return { ok: false, reasonCode: rc.notAuthorized, reason: 'a token connection keeps no session: connect with a clean start' };
        const token = req.password?.toString('utf8');
        if (!token) return { ok: false, reasonCode: rc.badUsernameOrPassword, reason: 'user name token, password: an access token or personal access token' };
        try {
          const principal = await deps.auth.authenticate(token);
          const identity: ClientIdentity = { kind: 'user', userId: principal.userId, connection: randomBytes(9).toString('base64url') };
          principals.set(identity, principal);
          if (principal.scope) tokens.set(identity, token);
          return { ok: true, identity };
        } catch (e) {
          if (!isAppError(e)) throw e;
          return { ok: false, reasonCode: rc.badUsernameOrPassword, reason: e.message };
        }
      })();
    },

    subscribe(client, filter) {
      const isUser = client.identity.kind === 'user';
      if (!isUser && !filter.startsWith('orgs/')) return undefined;
      return (async (): Promise<SubscribeVerdict> => {
        const principal = client.identity.kind === 'user' ? principals.get(client.identity) : undefined;
        if (!principal) return { ok: false, reasonCode: rc.notAuthorized, reason: isUser ? 'this connection is not authenticated any more: connect again' : 'orgs/<id>/events is for user tokens (user name token)' };
        const parsed = parseAddress(filter);
        if (!parsed.ok || parsed.address.kind !== 'org.events') return { ok: false, reasonCode: rc.notAuthorized, reason: 'a token connection subscribes to orgs/<org id>/events/# only (or narrower)' };
        const { org, rest } = parsed.address;
        if (rest.length === 0) return { ok: false, reasonCode: rc.topicFilterInvalid, reason: 'events are sent on orgs/<org>/events/<kind>/<verb>/<subject id>: subscribe to orgs/<org>/events/# (or narrower)' };
        if (rest.length > 3) return { ok: false, reasonCode: rc.topicFilterInvalid, reason: 'orgs/<org>/events/<kind>/<verb>/<subject id> has at most three segments after events' };
        try {
          await deps.orgs.authorize(principal, org, 'events:read');
        } catch (e) {
          if (!isAppError(e)) throw e;
          return { ok: false, reasonCode: rc.notAuthorized, reason: e.message };
        }
        let ids = watchers.get(org);
        if (!ids) watchers.set(org, (ids = new Set()));
        ids.add(client.clientId);
        return { ok: true };
      })();
    },

    close() {
      clearInterval(periodic);
      stopEvents();
      stopSessions();
    },
  };
}
