import { createHash } from 'node:crypto';
import { isAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DeviceAuthorizer, DeviceCredential } from '../auth/decision.js';
import { concerns, type AccessChange, type AccessChanges } from '../auth/invalidation.js';
import type { Bus, LiveSubscription } from '../messaging/bus.js';
import type { Envelope } from '../messaging/envelope.js';
import type { Client, MessagingService } from '../messaging/service.js';
import { channelTopic, normaliseSubtopic, notServed, parseAddress, type ChannelMessages } from '../core/address.js';
import { splitKey, type Broker } from './broker.js';
import { mqttReasonOf } from './errors.js';
import type { Session } from './session.js';
import type { BrokerPolicy } from './policy.js';
import { rc, type BrokerMessage, type ClientIdentity } from './types.js';
import { enrolmentTopics } from './enrolment.js';
import type { IdentityService } from '../identity/index.js';
import type { TwinService } from '../twins/index.js';
import { twinTopics } from './twins.js';
import { eventTopics, type EventTopicDeps } from './events.js';

/** Plain subscriptions share one feed per channel; each share group has its own. */
function feedKey(channel: string, filter: string, group: string | undefined): string {
  return group === undefined ? channel : `${channel}\u0000${group}\u0000${filter}`;
}

/** The bus queue group of an MQTT share group: the same on every node, a valid NATS token. */
function shareQueue(group: string, filter: string): string {
  return `mqtt-share-${createHash('sha256').update(group).update('\u0000').update(filter).digest('hex').slice(0, 32)}`;
}

/** A device the broker authenticated, as the messaging service takes it (decisions on it are checked again there). */
function identified(identity: Extract<ClientIdentity, { kind: 'device' }>): Client {
  return { kind: 'identified', device: { id: identity.deviceId, orgId: identity.orgId, enabled: true } };
}

/** The envelope as the broker sees it: the channel topic, the MQTT particulars when an MQTT client sent it. */
export function envelopeToMessage(env: Envelope): BrokerMessage {
  const m = env.mqtt;
  const message: BrokerMessage = {
    topic: channelTopic(env.channel, env.subtopic),
    payload: env.payload,
    qos: m?.qos ?? 1, // messages from HTTP, WebSocket and CoAP were acknowledged: at least once
    retain: m?.retain ?? false,
    properties: { ...m?.properties, contentType: env.contentType },
    id: env.id,
  };
  if (m?.origin !== undefined) message.origin = m.origin;
  if (m?.expiresAt !== undefined) message.expiresAt = m.expiresAt;
  return message;
}

/** The channel messages a topic or filter addresses, or why it addresses none (the reason a client gets). */
function channelAddress(topic: string): ChannelMessages | { error: string } {
  const parsed = parseAddress(topic);
  if (!parsed.ok) return { error: parsed.error };
  return parsed.address.kind === 'channel.messages' ? parsed.address : { error: notServed(parsed.address) };
}

/** The channels a session's subscriptions are on: channel id → subscription keys. */
function channelsOf(session: Session): Map<string, string[]> {
  const channels = new Map<string, string[]>();
  for (const key of session.subscriptions.keys()) {
    const address = channelAddress(splitKey(key).filter);
    if ('error' in address) continue;
    const channel = address.channel;
    const keys = channels.get(channel);
    if (keys) keys.push(key);
    else channels.set(channel, [key]);
  }
  return channels;
}

/** What a cut-off client is told, by the authorizer's reason (MQTT 5 reason string). */
const cutReason = {
  invalid_credentials: 'the device or its credentials are no longer valid',
  device_disabled: 'the device was disabled',
} as const;

/**
 * Fleetwire's broker policy: devices authenticate with their id and secret (or a client
 * certificate), topics are `channels/<id>/messages[/<subtopic>]`, and publish and subscribe are
 * allowed by the device's connections. Published messages go through the messaging service to the
 * bus; the bus feeds every node's broker the channels its clients subscribe to, so a message
 * reaches each subscriber once, whichever protocol or node it came from.
 */
export function fleetwirePolicy(deps: { authorizer: DeviceAuthorizer; messaging: MessagingService; bus: Bus; log: Logger; broker: () => Broker; accessChanges?: AccessChanges; identity?: IdentityService; twins?: TwinService; events?: Omit<EventTopicDeps, 'broker' | 'log'> }): BrokerPolicy {
  const { authorizer, messaging, bus, log } = deps;
  const enrolment = deps.identity && enrolmentTopics({ identity: deps.identity, broker: deps.broker, log });
  const events = deps.events && eventTopics({ ...deps.events, broker: deps.broker, log });
  const twins = deps.twins && twinTopics({ twins: deps.twins, broker: deps.broker, ...(bus.kind === 'nats' ? { broadcasts: bus } : {}), log });
  /** Device-addressed topics (`devices/<id>/…`) the policy serves itself; channels go through the bus. */
  const deviceTopic = (topic: string) => twins !== undefined && topic.startsWith('devices/');
  /** channel → its bus subscription and how many filters use it. */
  const feeds = new Map<string, { refs: number; sub: Promise<LiveSubscription> }>();
  /**
   * The credential each connected device authenticated with, by the identity object the broker
   * keeps on its connection: re-checked when access changes, so that a session opened with a
   * secret since rotated ends. Never stored (a restored session's identity is not in here).
   */
  const credentials = new WeakMap<ClientIdentity, DeviceCredential>();

  /**
   * Re-authorises a session after an access change: a device no longer valid (deleted, disabled,
   * its secret rotated) loses its whole session; one that lost subscribe on a channel is
   * disconnected and its session loses the subscriptions there (MQTT has no server-side
   * unsubscribe to tell the client). MQTT 5 clients get DISCONNECT 0x98 Administrative action.
   */
  const recheck = async (broker: Broker, session: Session, deviceId: string, channels: Map<string, string[]>): Promise<void> => {
    const conn = session.connection;
    const credential = (conn && credentials.get(conn.identity)) ?? { kind: 'certificate' as const, deviceId };
    const who = await authorizer.identify(credential);
    // the session may have ended, or got a new connection (authenticated after the change), meanwhile
    const current = () => broker.sessions.get(session.clientId) === session && session.connection === conn;
    if (!who.ok || who.device.id !== deviceId) {
      // a platform certificate that no longer authenticates was revoked (presence tells it apart from a kick)
      const end = !who.ok && who.reason === 'invalid_credentials' && credential.kind === 'certificate' && credential.serial !== undefined ? 'revoked' : 'kicked';
      if (current()) broker.cutOff(session, rc.administrativeAction, cutReason[who.ok ? 'invalid_credentials' : who.reason], 'session', end);
      return;
    }
    const lost: string[] = [];
    const denied: string[] = [];
    for (const [channel, keys] of channels) {
      const d = await authorizer.authorizeDevice(who.device, channel, 'subscribe');
      if (d.allow) continue;
      lost.push(...keys);
      denied.push(channel);
    }
    if (lost.length > 0 && current()) broker.cutOff(session, rc.administrativeAction, `subscribe access withdrawn on channel ${denied.join(', ')}`.slice(0, 200), lost);
  };

  const onChange = (change: AccessChange) => {
    const broker = deps.broker();
    const checks: Promise<void>[] = [];
    for (const session of broker.sessions.values()) {
      const identity = session.identity;
      if (identity.kind !== 'device') continue;
      // a change of the device itself concerns even a session with no subscription (a publisher)
      if (change.kind === 'devices' && !change.deviceIds.has(identity.deviceId)) continue;
      const channels = channelsOf(session);
      if (change.kind !== 'devices' && ![...channels.keys()].some((c) => concerns(change, identity.deviceId, c))) continue;
      checks.push(recheck(broker, session, identity.deviceId, channels));
    }
    if (checks.length === 0) return;
    void Promise.all(checks).catch((e: unknown) => log.error({ err: e }, 're-checking MQTT sessions after an access change failed'));
  };
  const stopListening = deps.accessChanges?.onChange(onChange);

  const refuse = (e: unknown, context: 'publish' | 'subscribe' = 'publish') => {
    if (!isAppError(e)) throw e;
    return { ok: false as const, reasonCode: mqttReasonOf(e.code, context), reason: e.message };
  };

  return {
    async authenticate(req) {
      const { username, password, meta } = req;
      const enrolling = enrolment?.authenticate(req);
      if (enrolling) return enrolling;
      const following = events?.authenticate(req);
      if (following) return following;
      let result;
      if (meta.certificateCn) {
        if (username && username !== meta.certificateCn) return { ok: false, reasonCode: rc.badUsernameOrPassword, reason: 'the username does not match the certificate' };
        result = await authorizer.identify({ kind: 'certificate', deviceId: meta.certificateCn, ...(meta.certificateSerial ? { serial: meta.certificateSerial } : {}) });
      } else {
        if (!password || password.length === 0) return { ok: false, reasonCode: rc.badUsernameOrPassword, reason: 'username = device id, password = device secret' };
        result = await authorizer.identify({ kind: 'secret', secret: password.toString('utf8'), ...(username ? { deviceId: username } : {}) });
      }
      if (!result.ok) return { ok: false, reasonCode: result.reason === 'device_disabled' ? rc.notAuthorized : rc.badUsernameOrPassword };
      const identity: ClientIdentity = { kind: 'device', deviceId: result.device.id, orgId: result.device.orgId };
      // re-checked with what it proved: a secret, or a platform certificate (by its serial); any
      // other certificate session by its device id, as any session without an entry here
      if (!meta.certificateCn) credentials.set(identity, { kind: 'secret', secret: password!.toString('utf8'), deviceId: result.device.id });
      else if (meta.certificateSerial) credentials.set(identity, { kind: 'certificate', deviceId: result.device.id, serial: meta.certificateSerial });
      return { ok: true, identity };
    },

    async publish(client, message) {
      if (enrolment && (client.identity.kind === 'enrolment' || message.topic.startsWith('enrolment/'))) {
        const credential = credentials.get(client.identity);
        return enrolment.publish(client, message, credential?.kind === 'certificate' && credential.serial !== undefined ? { deviceId: credential.deviceId, serial: credential.serial } : undefined);
      }
      if (client.identity.kind !== 'device') return { ok: false, reasonCode: rc.notAuthorized };
      if (deviceTopic(message.topic)) return twins!.publish(client, message);
      const parsed = channelAddress(message.topic);
      if ('error' in parsed) return { ok: false, reasonCode: rc.notAuthorized, reason: parsed.error };
      const { contentType, ...kept } = message.properties ?? {};
      try {
        // taken by the bus (live subscribers have it) once this resolves; stored() says when it is durable
        const submitted = await messaging.submit({
          client: identified(client.identity),
          channel: parsed.channel,
          subtopic: parsed.subtopic,
          // MQTT 3.1.1 has no content type, MQTT 5 only the optional property (MQTT 5 §3.3.2.3.9): without it the channel's applies
          contentType,
          payload: message.payload,
          protocol: 'mqtt',
          mqtt: {
            qos: message.qos,
            retain: message.retain,
            ...(message.origin !== undefined ? { origin: message.origin } : {}),
            ...(message.expiresAt !== undefined ? { expiresAt: message.expiresAt } : {}),
            ...(Object.keys(kept).length > 0 ? { properties: kept } : {}),
          },
        });
        return { ok: true, route: 'policy', stored: () => submitted.stored().then(() => undefined, (e: unknown) => (isAppError(e) ? refuse(e) : { ok: false as const, reasonCode: rc.unspecified, reason: 'the message could not be stored' })) };
      } catch (e) {
        return refuse(e);
      }
    },

    async mayPublish(client, topic) {
      if (client.identity.kind !== 'device') return { ok: false, reasonCode: rc.notAuthorized };
      const parsed = channelAddress(topic);
      if ('error' in parsed) return { ok: false, reasonCode: rc.notAuthorized, reason: parsed.error };
      const sub = normaliseSubtopic(parsed.subtopic);
      if (!sub.ok) return { ok: false, reasonCode: rc.topicNameInvalid, reason: sub.error };
      try {
        await messaging.authorize(identified(client.identity), parsed.channel, 'publish');
        return { ok: true };
      } catch (e) {
        return refuse(e);
      }
    },

    async subscribe(client, filter) {
      // enrolment replies: every connection's own (a device's renewals, an enrolling connection's only topics)
      const replies = enrolment?.subscribe(filter);
      if (replies) return replies;
      // fleet events: a user token connection's only topics
      const eventVerdict = events?.subscribe(client, filter);
      if (eventVerdict) return eventVerdict;
      if (client.identity.kind !== 'device') return { ok: false, reasonCode: rc.notAuthorized, reason: 'an enrolment connection subscribes to enrolment/+ only' };
      if (deviceTopic(filter)) return twins!.subscribe(client, filter);
      const parsed = channelAddress(filter);
      if ('error' in parsed) return { ok: false, reasonCode: rc.notAuthorized, reason: parsed.error };
      const sub = normaliseSubtopic(parsed.subtopic, true);
      if (!sub.ok) return { ok: false, reasonCode: rc.topicFilterInvalid, reason: sub.error };
      try {
        await messaging.authorize(identified(client.identity), parsed.channel, 'subscribe');
        return { ok: true };
      } catch (e) {
        return refuse(e, 'subscribe');
      }
    },

    subscribed(client, filter) {
      if (deviceTopic(filter)) twins!.subscribed(client, filter);
    },

    connected(client) {
      twins?.connected(client);
    },

    feedsShareGroups: true,

    close() {
      stopListening?.();
      twins?.close();
      events?.close();
    },

    watch(filter, group) {
      const parsed = channelAddress(filter);
      if ('error' in parsed) return;
      const key = feedKey(parsed.channel, filter, group);
      const feed = feeds.get(key);
      if (feed) {
        feed.refs++;
        return feed.sub.then(() => undefined, () => undefined);
      }
      const broker = deps.broker();
      // A share group is one NATS queue group across nodes: each message reaches one node, which
      // gives it to one local member. Everything else: the channel's feed, routed to every match.
      const sub =
        group === undefined
          ? bus.subscribe(parsed.channel, '#', (env) => broker.route(envelopeToMessage(env)))
          : bus.subscribe(parsed.channel, parsed.subtopic, (env) => broker.routeShared(filter, group, envelopeToMessage(env)), { queue: shareQueue(group, filter) });
      feeds.set(key, { refs: 1, sub });
      return sub.then(
        () => undefined,
        (e: unknown) => log.error({ err: e, channel: parsed.channel, group }, 'subscribing the MQTT broker to a channel failed'),
      );
    },

    unwatch(filter, group) {
      const parsed = channelAddress(filter);
      if ('error' in parsed) return;
      const key = feedKey(parsed.channel, filter, group);
      const feed = feeds.get(key);
      if (!feed) return;
      if (--feed.refs > 0) return;
      feeds.delete(key);
      void feed.sub.then((s) => s.unsubscribe(), () => {});
    },
  };
}
