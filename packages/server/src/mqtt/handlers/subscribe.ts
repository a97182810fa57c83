import type { ISubscribePacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { checkTopicFilter, parseSharedFilter } from '../topics.js';
import { rc, type SubscriptionOptions } from '../types.js';

/** SUBSCRIBE (§3.8): one reason code per filter in SUBACK, then the retained messages. */
export async function handleSubscribe(conn: Connection, packet: ISubscribePacket): Promise<void> {
  const broker = conn.broker;
  const v5 = conn.protocolVersion === 5;
  const session = conn.session!;
  const subscriptionId = packet.properties?.subscriptionIdentifier;
  if (subscriptionId === 0) return conn.disconnect(rc.protocolError, 'subscription identifier 0'); // [MQTT-3.8.2-?]
  const granted: number[] = [];
  const retainedFor: { filter: string; opts: SubscriptionOptions }[] = [];
  const grantedFilters: string[] = [];
  let overQuota = 0;

  for (const s of packet.subscriptions) {
    const shared = parseSharedFilter(s.topic);
    if (shared && 'error' in shared) {
      granted.push(v5 ? rc.topicFilterInvalid : 0x80);
      continue;
    }
    const filter = shared ? shared.filter : s.topic;
    const check = checkTopicFilter(filter);
    if (!check.ok) {
      granted.push(v5 ? rc.topicFilterInvalid : 0x80); // [MQTT-3.8.3-?] / 3.1.1 failure 0x80
      continue;
    }
    if (shared && s.nl) return conn.disconnect(rc.protocolError, 'No Local on a shared subscription'); // [MQTT-3.8.3-4]
    // A session holds so many distinct filters at most (shared ones count; the same filter again replaces it)
    if (session.subscriptions.size >= broker.options.maxSubscriptions && !session.subscriptions.has(s.topic)) {
      overQuota++;
      granted.push(v5 ? rc.quotaExceeded : 0x80);
      continue;
    }
    const verdict = await broker.policy.subscribe({ clientId: conn.clientId, identity: conn.identity }, filter);
    if (conn.closed) return;
    if (!verdict.ok) {
      broker.log.info({ clientId: conn.clientId, filter: s.topic, reasonCode: verdict.reasonCode }, 'MQTT subscribe refused');
      granted.push(v5 ? verdict.reasonCode : 0x80); // [MQTT-3.9.3-?]: 0x80 failure in 3.1.1
      continue;
    }
    const qos = Math.min(s.qos, broker.options.maximumQoS) as 0 | 1 | 2;
    const opts: SubscriptionOptions = {
      qos,
      noLocal: v5 ? Boolean(s.nl) : false,
      retainAsPublished: v5 ? Boolean(s.rap) : false,
      retainHandling: (v5 ? s.rh ?? 0 : 0) as 0 | 1 | 2,
      ...(subscriptionId !== undefined ? { subscriptionId } : {}),
      ...(verdict.exclude ? { exclude: verdict.exclude } : {}),
    };
    const existed = session.subscriptions.has(s.topic);
    broker.subscribe(session, s.topic, filter, opts, shared ? shared.group : undefined); // replaces an identical filter [MQTT-3.8.4-3]
    granted.push(qos);
    if (!shared) grantedFilters.push(filter);
    // Retained messages: not for shared subscriptions; rh 1 only for new ones; rh 2 never (§3.3.1.3)
    if (!shared && (opts.retainHandling === 0 || (opts.retainHandling === 1 && !existed))) retainedFor.push({ filter, opts });
  }
  if (overQuota > 0) broker.log.info({ clientId: conn.clientId, refused: overQuota, limit: broker.options.maxSubscriptions }, 'MQTT subscriptions refused: the session holds as many as it may');
  const suback = { cmd: 'suback' as const, messageId: packet.messageId!, granted };
  await broker.persisted(session); // a persistent session's subscriptions are written before SUBACK promises them
  if (conn.closed) return;
  conn.send(suback); // [MQTT-3.8.4-1]
  for (const { filter, opts } of retainedFor) await broker.sendRetained(conn, filter, opts);
  if (conn.closed || !broker.policy.subscribed) return;
  for (const filter of grantedFilters) broker.policy.subscribed({ clientId: conn.clientId, identity: conn.identity }, filter);
}
