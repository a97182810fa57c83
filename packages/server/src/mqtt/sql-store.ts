import type { RawQueries } from '../db/raw.js';
import type { RetainedStore } from './retained.js';
import { decodeProperties, encodeProperties, type SessionChange, type SessionStore, type StoredMessage, type StoredSession } from './store.js';
import { hasWildcard, topicMatches } from './topics.js';
import type { BrokerMessage, ClientIdentity, ProtocolVersion, QoS, SubscriptionOptions } from './types.js';

interface RetainedRow {
  topic: string;
  payload: Buffer | Uint8Array;
  qos: number;
  properties: string | null;
  expires_at: number | null;
}

/** The literal topic levels before a filter's first wildcard (`a/b` of `a/b/+/c`): every matching topic is that, or starts with it and `/`. */
function literalPrefix(filter: string): string {
  const levels = filter.split('/');
  const literal: string[] = [];
  for (const l of levels) {
    if (l === '+' || l === '#') break;
    literal.push(l);
  }
  return literal.join('/');
}

const retainedColumns = 'topic, payload, qos, properties, expires_at';

/** Expired topics deleted per statement: far below the bound parameters either database takes (SQLite 32766, PostgreSQL 65535). */
const expiredPerDelete = 1000;

/**
 * Retained messages in the database: they survive restarts and every node sharing the database
 * sees the same ones. Expired messages are deleted when a lookup meets them.
 */
export class SqlRetainedStore implements RetainedStore {
  constructor(
    private readonly q: RawQueries,
    private readonly now: () => number = Date.now,
  ) {}

  async set(message: BrokerMessage): Promise<void> {
    if (message.payload.length === 0) {
      await this.q.run('DELETE FROM mqtt_retained WHERE topic = ?', [message.topic]); // [MQTT-3.3.1-10]
      return;
    }
    await this.q.run(
      `INSERT INTO mqtt_retained (topic, payload, qos, properties, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, properties = excluded.properties, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
      [message.topic, message.payload, message.qos, encodeProperties(message.properties), message.expiresAt ?? null, this.now()],
    );
  }

  async match(filter: string): Promise<BrokerMessage[]> {
    const wildcard = hasWildcard(filter);
    const rows = wildcard ? await this.candidates(filter) : await this.q.all<RetainedRow>(`SELECT ${retainedColumns} FROM mqtt_retained WHERE topic = ?`, [filter]);
    const now = this.now();
    const out: BrokerMessage[] = [];
    const expired: string[] = [];
    for (const r of rows) {
      // the narrowing is only a first cut: MQTT matching decides
      if (wildcard && !topicMatches(filter, r.topic)) continue;
      if (r.expires_at !== null && r.expires_at <= now) {
        expired.push(r.topic);
        continue;
      }
      const m: BrokerMessage = { topic: r.topic, payload: Buffer.from(r.payload), qos: r.qos as QoS, retain: true };
      const props = decodeProperties(r.properties);
      if (props) m.properties = props;
      if (r.expires_at !== null) m.expiresAt = r.expires_at;
      out.push(m);
    }
    for (let i = 0; i < expired.length; i += expiredPerDelete) {
      const topics = expired.slice(i, i + expiredPerDelete);
      // expires_at again: a message set meanwhile under the topic stays
      await this.q.run(`DELETE FROM mqtt_retained WHERE expires_at <= ? AND topic IN (${topics.map(() => '?').join(', ')})`, [now, ...topics]);
    }
    return out;
  }

  private candidates(filter: string): Promise<RetainedRow[]> {
    return this.q.all<RetainedRow>(...retainedCandidates(this.q.kind, filter));
  }
}

/**
 * The query for the retained rows a wildcard filter may match, narrowed by its literal levels with
 * an index range scan: in code point order, `a/b/` up to `a/b0` holds exactly the topics under
 * `a/b` ('0' follows '/'), and the topic `a/b` itself is looked up beside them (`a/b/#` matches it,
 * [MQTT-4.7.1-2]). SQLite compares text byte by byte, which is code point order for UTF-8;
 * PostgreSQL compares under the C collation, the order of its index `mqtt_retained_topic_c`
 * (migration 9). A filter that starts with a wildcard reads every row.
 */
export function retainedCandidates(kind: RawQueries['kind'], filter: string): [text: string, params: unknown[]] {
  const prefix = literalPrefix(filter);
  const all = `SELECT ${retainedColumns} FROM mqtt_retained`;
  if (prefix === '' && !filter.startsWith('/')) return [all, []];
  const ordered = kind === 'sqlite' ? 'topic' : 'topic COLLATE "C"';
  return [`${all} WHERE (${ordered} >= ? AND ${ordered} < ?) OR ${ordered} = ?`, [`${prefix}/`, `${prefix}0`, prefix]];
}

interface SessionRow {
  client_id: string;
  node_id: string;
  identity: string;
  protocol_version: number;
  expiry_seconds: number;
  disconnected_at: number | null;
  incoming_qos2: string;
}

interface SubscriptionRow {
  client_id: string;
  key: string;
  options: string;
}

interface MessageRow {
  client_id: string;
  seq: number;
  packet_id: number | null;
  released: number | boolean;
  qos: number;
  retain: number | boolean;
  topic: string;
  payload: Buffer | Uint8Array;
  properties: string | null;
  expires_at: number | null;
  subscription_ids: string | null;
  message_id: string | null;
}

const sessionColumns = 'client_id, node_id, identity, protocol_version, expiry_seconds, disconnected_at, incoming_qos2';
const messageColumns = 'client_id, seq, packet_id, released, qos, retain, topic, payload, properties, expires_at, subscription_ids, message_id';

function toMessage(r: MessageRow): StoredMessage {
  const message: BrokerMessage = { topic: r.topic, payload: Buffer.from(r.payload), qos: r.qos as QoS, retain: Boolean(r.retain) };
  const props = decodeProperties(r.properties);
  if (props) message.properties = props;
  if (r.expires_at !== null) message.expiresAt = r.expires_at;
  if (r.message_id !== null) message.id = r.message_id;
  return {
    seq: r.seq,
    packetId: r.packet_id ?? undefined,
    released: Boolean(r.released),
    qos: r.qos as QoS,
    retain: Boolean(r.retain),
    subscriptionIds: r.subscription_ids ? (JSON.parse(r.subscription_ids) as number[]) : undefined,
    message,
  };
}

function assemble(sessions: SessionRow[], subs: SubscriptionRow[], messages: MessageRow[]): StoredSession[] {
  const byId = new Map<string, StoredSession>();
  for (const r of sessions) {
    byId.set(r.client_id, {
      clientId: r.client_id,
      nodeId: r.node_id,
      identity: JSON.parse(r.identity) as ClientIdentity,
      protocolVersion: r.protocol_version as ProtocolVersion,
      expirySeconds: r.expiry_seconds,
      disconnectedAt: r.disconnected_at ?? undefined,
      incomingQos2: JSON.parse(r.incoming_qos2) as number[],
      subscriptions: [],
      messages: [],
    });
  }
  for (const s of subs) byId.get(s.client_id)?.subscriptions.push([s.key, JSON.parse(s.options) as SubscriptionOptions]);
  for (const m of messages) byId.get(m.client_id)?.messages.push(toMessage(m));
  return [...byId.values()];
}

/** Persistent MQTT sessions in SQLite or PostgreSQL (tables of migration 3). */
export class SqlSessionStore implements SessionStore {
  constructor(
    private readonly q: RawQueries,
    private readonly now: () => number = Date.now,
  ) {}

  async load(clientId: string): Promise<StoredSession | undefined> {
    const sessions = await this.q.all<SessionRow>(`SELECT ${sessionColumns} FROM mqtt_sessions WHERE client_id = ?`, [clientId]);
    if (sessions.length === 0) return undefined;
    const subs = await this.q.all<SubscriptionRow>('SELECT client_id, key, options FROM mqtt_subscriptions WHERE client_id = ?', [clientId]);
    const messages = await this.q.all<MessageRow>(`SELECT ${messageColumns} FROM mqtt_session_messages WHERE client_id = ? ORDER BY seq`, [clientId]);
    return assemble(sessions, subs, messages)[0];
  }

  async holder(clientId: string): Promise<{ nodeId: string; identity: ClientIdentity } | undefined> {
    const rows = await this.q.all<{ node_id: string; identity: string }>('SELECT node_id, identity FROM mqtt_sessions WHERE client_id = ?', [clientId]);
    const row = rows[0];
    return row && { nodeId: row.node_id, identity: JSON.parse(row.identity) as ClientIdentity };
  }

  async loadNode(nodeId: string): Promise<StoredSession[]> {
    const sessions = await this.q.all<SessionRow>(`SELECT ${sessionColumns} FROM mqtt_sessions WHERE node_id = ?`, [nodeId]);
    if (sessions.length === 0) return [];
    const subs = await this.q.all<SubscriptionRow>('SELECT s.client_id, s.key, s.options FROM mqtt_subscriptions s JOIN mqtt_sessions x ON x.client_id = s.client_id WHERE x.node_id = ?', [nodeId]);
    const messages = await this.q.all<MessageRow>(
      `SELECT ${messageColumns.split(', ').map((c) => `m.${c}`).join(', ')} FROM mqtt_session_messages m JOIN mqtt_sessions x ON x.client_id = m.client_id WHERE x.node_id = ? ORDER BY m.client_id, m.seq`,
      [nodeId],
    );
    return assemble(sessions, subs, messages);
  }

  async apply(changes: readonly SessionChange[]): Promise<void> {
    const statements: [string, unknown[]][] = [];
    for (const c of changes) {
      switch (c.op) {
        case 'session': {
          const r = c.record;
          statements.push([
            `INSERT INTO mqtt_sessions (${sessionColumns}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (client_id) DO UPDATE SET node_id = excluded.node_id, identity = excluded.identity, protocol_version = excluded.protocol_version,
               expiry_seconds = excluded.expiry_seconds, disconnected_at = excluded.disconnected_at, incoming_qos2 = excluded.incoming_qos2, updated_at = excluded.updated_at`,
            [r.clientId, r.nodeId, JSON.stringify(r.identity), r.protocolVersion, r.expirySeconds, r.disconnectedAt ?? null, JSON.stringify(r.incomingQos2), this.now()],
          ]);
          break;
        }
        case 'end':
          statements.push(['DELETE FROM mqtt_session_messages WHERE client_id = ?', [c.clientId]]);
          statements.push(['DELETE FROM mqtt_subscriptions WHERE client_id = ?', [c.clientId]]);
          statements.push(['DELETE FROM mqtt_sessions WHERE client_id = ?', [c.clientId]]);
          break;
        case 'subscribe':
          statements.push(['INSERT INTO mqtt_subscriptions (client_id, key, options) VALUES (?, ?, ?) ON CONFLICT (client_id, key) DO UPDATE SET options = excluded.options', [c.clientId, c.key, JSON.stringify(c.options)]]);
          break;
        case 'unsubscribe':
          statements.push(['DELETE FROM mqtt_subscriptions WHERE client_id = ? AND key = ?', [c.clientId, c.key]]);
          break;
        case 'message': {
          const s = c.message;
          const m = s.message;
          statements.push([
            `INSERT INTO mqtt_session_messages (${messageColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (client_id, seq) DO UPDATE SET packet_id = excluded.packet_id, released = excluded.released`,
            [c.clientId, s.seq, s.packetId ?? null, s.released ? 1 : 0, s.qos, s.retain ? 1 : 0, m.topic, m.payload, encodeProperties(m.properties), m.expiresAt ?? null, s.subscriptionIds ? JSON.stringify(s.subscriptionIds) : null, m.id ?? null],
          ]);
          break;
        }
        case 'done':
          statements.push(['DELETE FROM mqtt_session_messages WHERE client_id = ? AND seq = ?', [c.clientId, c.seq]]);
          break;
      }
    }
    await this.q.batch(statements);
  }

  async purgeExpired(now: number): Promise<number> {
    // 0xFFFFFFFF: the session never expires (§3.1.2.11.2)
    const rows = await this.q.all<{ client_id: string }>('SELECT client_id FROM mqtt_sessions WHERE disconnected_at IS NOT NULL AND expiry_seconds < 4294967295 AND disconnected_at + expiry_seconds * 1000 <= ?', [now]);
    if (rows.length === 0) return 0;
    await this.apply(rows.map((r) => ({ op: 'end' as const, clientId: r.client_id })));
    return rows.length;
  }
}
