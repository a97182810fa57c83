// Device twins over MQTT (docs/twins.md). A device reads and writes its own twins on
//   devices/<id>/twin[/<name>]/get      → …/get/accepted | …/get/rejected
//   devices/<id>/twin[/<name>]/update   → …/update/accepted | …/update/rejected
// and is told of changes on …/update/delta (what desired asks that reported lacks, with the twin's
// version) and …/update/documents (the state before and after each change). Replies go to the
// requesting connection; notifications to every session of the device subscribed to them, on every
// node (a bus broadcast). Whenever a device subscribes to a delta topic, or connects with such a
// subscription, it is sent the current delta without asking (the catch-up): a desired change made
// while it was away is never missed, and no session is sent an older version after a newer one.
import { randomBytes } from 'node:crypto';
import { isAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseAddress } from '../core/address.js';
import type { Broadcasts } from '../core/broadcast.js';
import { parseJsonText } from '../messaging/payload/json.js';
import { defaultTwin, isObject, type JsonObject, type TwinNotice, type TwinService, type TwinUpdate } from '../twins/index.js';
import type { Broker } from './broker.js';
import { splitKey } from './broker.js';
import { deliverToSession } from './direct.js';
import type { PolicyClient, PublishVerdict, SubscribeVerdict } from './policy.js';
import type { Session } from './session.js';
import { checkTopicName, topicMatches } from './topics.js';
import { rc, type BrokerMessage } from './types.js';

/** Largest request, bytes: a section is 32 KiB by default, at most 1 MiB (twins/service.ts). */
const maxRequestBytes = 1024 * 1024 + 4096;
const maxClientToken = 64;
/** Broadcast topic of twin changes between nodes. */
const repliesTopic = 'twin-replies';

type Operation = 'get' | 'update';
type Reply = 'accepted' | 'rejected' | 'delta' | 'documents';

interface TwinTopic {
  device: string;
  name: string;
  operation: Operation;
  reply?: Reply;
}

/** `devices/<id>/twin[/<name>]/<get|update>[/<reply>]`, or why not. */
export function parseTwinTopic(topic: string): TwinTopic | { error: string } {
  const parsed = parseAddress(topic);
  if (!parsed.ok || parsed.address.kind !== 'device' || parsed.address.family !== 'twin') return { error: 'not a twin topic' };
  const { device, rest } = parsed.address;
  const named = rest[0] !== 'get' && rest[0] !== 'update';
  const name = named ? rest[0] : defaultTwin;
  const [operation, reply, ...more] = named ? rest.slice(1) : rest;
  const usage = 'twin topics are devices/<id>/twin[/<name>]/get and …/update, with the replies …/get/accepted|rejected and …/update/accepted|rejected|delta|documents';
  if (name === undefined || name === defaultTwin && named || (operation !== 'get' && operation !== 'update') || more.length > 0) return { error: usage };
  const replies: Record<Operation, readonly string[]> = { get: ['accepted', 'rejected'], update: ['accepted', 'rejected', 'delta', 'documents'] };
  if (reply !== undefined && !replies[operation].includes(reply)) return { error: usage };
  return { device, name, operation, ...(reply !== undefined ? { reply: reply as Reply } : {}) };
}

/** The topic of a twin's operation or reply. */
export function twinTopic(device: string, name: string, operation: Operation, reply?: Reply): string {
  return ['devices', device, 'twin', ...(name === defaultTwin ? [] : [name]), operation, ...(reply ? [reply] : [])].join('/');
}

interface Request {
  update?: TwinUpdate;
  version?: number;
  clientToken?: string;
}

/** The request's JSON: `{"client_token"?}` for get, `{"reported"?, "desired"?, "rejected"?, "version"?, "client_token"?}` for update. */
function readRequest(operation: Operation, payload: Buffer): Request | { error: string; clientToken?: string } {
  if (payload.length === 0) return operation === 'get' ? {} : { error: 'an update is JSON: {"reported": {…}, "version"?: n, "client_token"?: "…"}' };
  if (payload.length > maxRequestBytes) return { error: `the request is larger than ${maxRequestBytes} bytes` };
  const parsed = parseJsonText(payload, 64, true);
  if (!parsed.ok) return { error: parsed.error };
  const body = parsed.value;
  if (!isObject(body)) return { error: 'the request is a JSON object' };
  const { client_token: token, version, ...update } = body;
  if (token !== undefined && (typeof token !== 'string' || token.length > maxClientToken)) return { error: `client_token is a string of at most ${maxClientToken} characters` };
  const clientToken = token as string | undefined;
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 0)) return { error: 'version is the twin version read, an integer', ...(clientToken !== undefined ? { clientToken } : {}) };
  if (operation === 'get') return { ...(clientToken !== undefined ? { clientToken } : {}) };
  return { update: update as TwinUpdate, ...(version !== undefined ? { version } : {}), ...(clientToken !== undefined ? { clientToken } : {}) };
}

/** A reply, sent to every session of the device subscribed to its topic, on every node. */
interface ReplyNotice {
  node: string;
  device: string;
  topic: string;
  body: Record<string, unknown>;
}

export interface TwinTopics {
  publish(client: PolicyClient, message: BrokerMessage): PublishVerdict;
  subscribe(client: PolicyClient, filter: string): SubscribeVerdict;
  /** A subscription was granted: send the current deltas it covers. */
  subscribed(client: PolicyClient, filter: string): void;
  /** A connection was accepted: its session's delta subscriptions get the current deltas. */
  connected(client: PolicyClient): void;
  close(): void;
}

export function twinTopics(deps: { twins: TwinService; broker: () => Broker; broadcasts?: Broadcasts; log: Logger }): TwinTopics {
  const { twins, log } = deps;
  const node = randomBytes(8).toString('hex');
  /** The last delta version each session was sent, per twin name: none older goes after it. */
  const sent = new WeakMap<Session, Map<string, number>>();
  /** Client ids of the sessions with twin subscriptions, by device: where notifications go on this node. */
  const listening = new Map<string, Set<string>>();

  const sessionOf = (client: PolicyClient): Session | undefined => {
    const session = deps.broker().sessions.get(client.clientId);
    return session && session.identity === client.identity ? session : undefined;
  };

  const message = (topic: string, body: unknown, correlationData?: Buffer): BrokerMessage => ({
    topic,
    payload: Buffer.from(JSON.stringify(body)),
    qos: 1,
    retain: false,
    properties: { contentType: 'application/json', ...(correlationData ? { correlationData } : {}) },
  });

  /** Sends a delta unless the session was sent a newer one (`live`: nor the same one again). */
  const sendDelta = (session: Session, device: string, name: string, version: number, delta: JsonObject, timestamp: number, live: boolean): void => {
    let versions = sent.get(session);
    const last = versions?.get(name) ?? -1;
    if (live ? version <= last : version < last) return;
    if (!deliverToSession(session, message(twinTopic(device, name, 'update', 'delta'), { version, state: delta, timestamp }))) return;
    if (!versions) sent.set(session, (versions = new Map()));
    versions.set(name, version);
  };

  /** The sessions of a device on this node that subscribe to twin topics (pruned as it goes). */
  const sessionsOf = (device: string): Session[] => {
    const ids = listening.get(device);
    if (!ids) return [];
    const out: Session[] = [];
    const broker = deps.broker();
    for (const id of ids) {
      const s = broker.sessions.get(id);
      if (s && s.identity.kind === 'device' && s.identity.deviceId === device) out.push(s);
      else ids.delete(id);
    }
    if (ids.size === 0) listening.delete(device);
    return out;
  };

  const onNotice = (n: TwinNotice): void => {
    for (const session of sessionsOf(n.deviceId)) {
      if (n.delta && Object.keys(n.delta).length > 0) sendDelta(session, n.deviceId, n.name, n.version, n.delta, n.at, true);
      deliverToSession(session, message(twinTopic(n.deviceId, n.name, 'update', 'documents'), { version: n.version, previous: n.previous, current: n.current, timestamp: n.at }));
    }
  };
  const stopWatching = twins.watch(onNotice);

  const onReply = (n: ReplyNotice): void => {
    for (const session of sessionsOf(n.device)) deliverToSession(session, message(n.topic, n.body));
  };
  // other nodes' replies to this device's sessions here (no bus of other nodes: none)
  const fromOthers = deps.broadcasts?.onBroadcast(repliesTopic, (data) => {
    let n: ReplyNotice;
    try {
      n = JSON.parse(data) as ReplyNotice;
    } catch {
      return;
    }
    if (n.node !== node) onReply(n);
  });

  /** Sends the current delta of every twin of the device whose delta topic `filter` covers. */
  const catchUp = async (session: Session, device: string, orgId: string, filters: string[]): Promise<void> => {
    const covers = (name: string) => filters.some((f) => topicMatches(f, twinTopic(device, name, 'update', 'delta')));
    const names = covers(defaultTwin) ? [defaultTwin] : [];
    // named twins only when a filter can match one (a wildcard, or a topic naming it)
    if (filters.some((f) => f.split('/').length !== 5 || f.includes('+') || f.includes('#'))) {
      for (const t of await twins.list(orgId, device)) if (t.name !== defaultTwin && covers(t.name)) names.push(t.name);
    }
    for (const name of names) {
      const doc = await twins.get(orgId, device, name, 'device', true);
      if (Object.keys(doc.delta).length === 0) continue;
      sendDelta(session, device, name, doc.version, doc.delta, doc.updated_at ? Date.parse(doc.updated_at) : Date.now(), false);
    }
  };

  const startCatchUp = (client: PolicyClient, filters: string[]): void => {
    if (client.identity.kind !== 'device' || filters.length === 0) return;
    const session = sessionOf(client);
    if (!session) return;
    const { deviceId, orgId } = client.identity;
    catchUp(session, deviceId, orgId, filters).catch((e: unknown) => log.error({ err: e, clientId: client.clientId, deviceId }, 'sending the twin delta to a device that subscribed failed'));
  };

  const ownTwinFilter = (client: PolicyClient, filter: string): boolean => client.identity.kind === 'device' && filter.startsWith(`devices/${client.identity.deviceId}/twin/`);

  return {
    publish(client, msg) {
      if (client.identity.kind !== 'device') return { ok: false, reasonCode: rc.notAuthorized };
      const t = parseTwinTopic(msg.topic);
      if ('error' in t) return { ok: false, reasonCode: rc.topicNameInvalid, reason: t.error };
      if (t.device !== client.identity.deviceId) return { ok: false, reasonCode: rc.notAuthorized, reason: "a device reads and writes its own twins only: devices/<its id>/twin/…" };
      if (t.reply !== undefined) return { ok: false, reasonCode: rc.notAuthorized, reason: `${t.reply} topics are the platform's to publish: a device publishes …/get and …/update` };
      const responseTopic = msg.properties?.responseTopic;
      if (responseTopic !== undefined && (!responseTopic.startsWith(`devices/${t.device}/twin/`) || !checkTopicName(responseTopic).ok)) {
        return { ok: false, reasonCode: rc.topicNameInvalid, reason: "the response topic of a twin request is one of the device's own twin topics" };
      }
      const { deviceId, orgId } = client.identity;
      const correlation = msg.properties?.correlationData;
      // MQTT 5 request/response (a response topic): to the requester alone; otherwise to every
      // session of the device subscribed to the reply topic, here and on the other nodes
      const answer = (reply: 'accepted' | 'rejected', body: Record<string, unknown>, clientToken: string | undefined) => {
        const full = { ...body, ...(clientToken !== undefined ? { client_token: clientToken } : {}) };
        if (responseTopic === undefined) {
          const n: ReplyNotice = { node, device: deviceId, topic: twinTopic(deviceId, t.name, t.operation, reply), body: full };
          onReply(n);
          deps.broadcasts?.broadcast(repliesTopic, JSON.stringify(n));
          return;
        }
        const session = sessionOf(client);
        if (!session || !deliverToSession(session, message(responseTopic, full, correlation))) log.debug({ clientId: client.clientId, topic: responseTopic }, 'MQTT twin reply not sent: the client is gone or not subscribed to its response topic');
      };
      const refuse = (e: unknown, clientToken: string | undefined) => {
        if (!isAppError(e)) log.error({ err: e, clientId: client.clientId, deviceId }, 'MQTT twin request failed');
        const body = isAppError(e) ? { code: e.code, message: e.message, ...e.details } : { code: 'internal', message: 'the request failed: try again' };
        answer('rejected', body, clientToken);
      };
      const request = readRequest(t.operation, msg.payload);
      if ('error' in request) {
        answer('rejected', { code: 'twin.invalid_update', message: request.error }, request.clientToken);
        return { ok: true, route: 'policy' };
      }
      const work =
        t.operation === 'get'
          ? twins.get(orgId, deviceId, t.name, 'device', true).then((doc) => answer('accepted', { ...doc }, request.clientToken))
          : twins.update(orgId, deviceId, t.name, request.update!, { actor: { kind: 'device', id: deviceId }, trustedDevice: true, ...(request.version !== undefined ? { version: request.version } : {}) }).then(({ twin, changed }) => {
              const delta = changed ? changed.delta : twins.view(twin, 'device').delta;
              answer('accepted', { version: twin.version, state: changed?.patch ?? {}, delta, timestamp: Date.parse(twin.updated_at) }, request.clientToken);
            });
      const done = work.catch((e: unknown) => refuse(e, request.clientToken));
      // QoS 1/2: acknowledged once the update is stored (or refused, which the rejected reply says)
      return { ok: true, route: 'policy', stored: () => done.then(() => undefined) };
    },

    subscribe(client, filter) {
      if (!ownTwinFilter(client, filter)) return { ok: false, reasonCode: rc.notAuthorized, reason: 'a device subscribes to its own twin topics only: devices/<its id>/twin/…' };
      const identity = client.identity as Extract<PolicyClient['identity'], { kind: 'device' }>;
      let ids = listening.get(identity.deviceId);
      if (!ids) listening.set(identity.deviceId, (ids = new Set()));
      ids.add(client.clientId);
      return { ok: true };
    },

    subscribed(client, filter) {
      if (ownTwinFilter(client, filter)) startCatchUp(client, [filter]);
    },

    connected(client) {
      if (client.identity.kind !== 'device') return;
      const session = sessionOf(client);
      if (!session) return;
      const filters = [...session.subscriptions.keys()].map((k) => splitKey(k)).filter((k) => k.group === undefined && ownTwinFilter(client, k.filter)).map((k) => k.filter);
      if (filters.length === 0) return;
      // a restored session: notifications go here again
      let ids = listening.get(client.identity.deviceId);
      if (!ids) listening.set(client.identity.deviceId, (ids = new Set()));
      ids.add(client.clientId);
      startCatchUp(client, filters);
    },

    close() {
      stopWatching();
      fromOthers?.unsubscribe();
    },
  };
}
