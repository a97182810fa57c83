/**
 * The one address scheme: every resource a protocol can name has one address, the same string as
 * an MQTT topic, an HTTP path (`/` in front), a WebSocket path (`/ws/` in front) and a CoAP path
 * (one Uri-Path option per segment). Every edge parses and formats addresses here and nowhere else.
 *
 * Served today:
 *   channels/<channel id>/messages[/<subtopic>]     a channel's messages (publish, subscribe, read)
 *   enrolment/<request|renew|accepted|rejected>     MQTT enrolment and renewal, request and replies,
 *                                                   private to the connection (docs/identity.md)
 *   devices/<device id>/twin[/<name>][/<operation>...]  a device's twins (docs/twins.md): MQTT
 *                                                   get/update and their replies, HTTP GET/PATCH of
 *                                                   the twin, CoAP GET/POST and Observe of the delta
 *   orgs/<org id>/events[/<kind>/<verb>/<subject>]   an organization's fleet events (subscribe
 *                                                   only, MQTT; docs/events.md)
 * Reserved (parsed to a typed target so edges refuse them with one clear answer until they are
 * served; commands fill them in):
 *   devices/<device id>/commands[/<command id>][/<operation>...]
 *   devices/<device id>/events[/...]
 * Served by HTTP and CoAP (POST, a device's heartbeat: docs/presence.md):
 *   devices/<device id>/presence
 *
 * Subtopic segments map one to one onto NATS subject tokens, so a segment may not hold what NATS
 * gives meaning to (`.`, `*`, `>`) nor white space.
 */

export const maxSubtopicLength = 1024;
export const maxSubtopicSegments = 32;

// eslint-disable-next-line no-control-regex -- control characters are exactly what a segment may not hold
const badSegmentChar = /[.*>\s\u0000-\u001f\u007f]/;

export type SubtopicResult = { ok: true; subtopic: string } | { ok: false; error: string };

/** Normalises a subtopic: splits on `/`, drops empty segments. `wildcards` allows `+` and a final `#` (subscribe). */
export function normaliseSubtopic(raw: string, wildcards = false): SubtopicResult {
  if (raw.length > maxSubtopicLength) return { ok: false, error: `subtopic longer than ${maxSubtopicLength} characters` };
  const segments = raw.split('/').filter((s) => s.length > 0);
  if (segments.length > maxSubtopicSegments) return { ok: false, error: `subtopic has more than ${maxSubtopicSegments} segments` };
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '+' || s === '#') {
      if (!wildcards) return { ok: false, error: `wildcard ${s} is only allowed when subscribing` };
      if (s === '#' && i !== segments.length - 1) return { ok: false, error: '# must be the last segment' };
      continue;
    }
    if (s.includes('+') || s.includes('#')) return { ok: false, error: `segment ${JSON.stringify(s)}: + and # must be whole segments` };
    if (badSegmentChar.test(s)) return { ok: false, error: `segment ${JSON.stringify(s)} may not contain '.', '*', '>', white space or control characters` };
  }
  return { ok: true, subtopic: segments.join('/') };
}

/** Whether a normalised subtopic matches a normalised filter (`+` one segment, `#` the rest, including none). */
export function subtopicMatches(filter: string, subtopic: string): boolean {
  if (filter === '#') return true;
  if (filter === subtopic) return true;
  const f = filter === '' ? [] : filter.split('/');
  const s = subtopic === '' ? [] : subtopic.split('/');
  for (let i = 0; i < f.length; i++) {
    const seg = f[i]!;
    if (seg === '#') return true;
    if (i >= s.length) return false;
    if (seg !== '+' && seg !== s[i]) return false;
  }
  return f.length === s.length;
}

export function hasWildcard(filter: string): boolean {
  return filter === '#' || filter === '+' || filter.startsWith('+/') || filter.endsWith('/#') || filter.endsWith('/+') || filter.includes('/+/');
}

/** A channel's messages: `channels/<channel>/messages[/<subtopic>]`. The subtopic is as sent (see normaliseSubtopic). */
export interface ChannelMessages {
  kind: 'channel.messages';
  channel: string;
  subtopic: string;
}

/** The families of device-addressed resources: `twin` and `presence` are served, the others are reserved until their issues serve them. */
export const deviceFamilies = ['twin', 'commands', 'events', 'presence'] as const;
export type DeviceFamily = (typeof deviceFamilies)[number];

/** `devices/<device>/<family>[/<rest>]`: a resource of one device. */
export interface DeviceResource {
  kind: 'device';
  device: string;
  family: DeviceFamily;
  /** The segments after the family, as sent. */
  rest: string[];
}

/** The MQTT enrolment topics: a connection's own requests (`request`, `renew`) and the replies to them. */
export const enrolmentOperations = ['request', 'renew', 'accepted', 'rejected'] as const;
export type EnrolmentOperation = (typeof enrolmentOperations)[number];

/** `enrolment/<operation>`: served over MQTT only (HTTP has POST /enrol and POST /renew). */
export interface EnrolmentTopic {
  kind: 'enrolment';
  operation: EnrolmentOperation;
}

/** `orgs/<org>/events[/<rest>]`: an organization's fleet events, `<kind>/<verb>/<subject id>` for event type `<kind>.<verb>`. */
export interface OrgEvents {
  kind: 'org.events';
  org: string;
  /** The segments after `events`, as sent. */
  rest: string[];
}

export type Address = ChannelMessages | DeviceResource | EnrolmentTopic | OrgEvents;

export type AddressResult = { ok: true; address: Address } | { ok: false; error: string };

/** How to write an address, for the error a client gets when its address is of no known shape. */
export const addressForms = 'channels/<channel id>/messages[/<subtopic>]';

const isFamily = (s: string): s is DeviceFamily => (deviceFamilies as readonly string[]).includes(s);

/**
 * Parses an address in any edge's form: a topic (`channels/c/messages/a/b`, a leading `/` allowed),
 * an HTTP or WebSocket path (`/channels/...`, `/ws/channels/...` with `ws: true`) or CoAP Uri-Path
 * segments (an array). Ids are not checked here (the services answer "not found"); wildcards in an
 * id are refused, since a subscription is always to one resource.
 */
export function parseAddress(address: string | readonly string[], options: { ws?: boolean } = {}): AddressResult {
  const segments = typeof address === 'string' ? address.split('/') : [...address];
  if (typeof address === 'string' && segments[0] === '') segments.shift();
  if (options.ws) {
    if (segments[0] !== 'ws') return { ok: false, error: `WebSocket paths are /ws/${addressForms}` };
    segments.shift();
  }
  const [root, id, family] = segments;
  if (root === 'channels' && family === 'messages' && id) {
    if (id === '+' || id === '#') return { ok: false, error: `a channel id may not be a wildcard: ${addressForms}` };
    return { ok: true, address: { kind: 'channel.messages', channel: id, subtopic: segments.slice(3).join('/') } };
  }
  if (root === 'enrolment' && segments.length === 2 && (enrolmentOperations as readonly string[]).includes(id!)) {
    return { ok: true, address: { kind: 'enrolment', operation: id as EnrolmentOperation } };
  }
  if (root === 'orgs' && id && family === 'events') {
    if (id === '+' || id === '#') return { ok: false, error: 'an organization id may not be a wildcard' };
    return { ok: true, address: { kind: 'org.events', org: id, rest: segments.slice(3) } };
  }
  if (root === 'devices' && id && family !== undefined && isFamily(family)) {
    if (id === '+' || id === '#') return { ok: false, error: 'a device id may not be a wildcard' };
    return { ok: true, address: { kind: 'device', device: id, family, rest: segments.slice(3) } };
  }
  return { ok: false, error: `addresses are ${addressForms}` };
}

/** The address as a topic (no leading `/`); prefix `/` for an HTTP path, `/ws/` for a WebSocket path. */
export function formatAddress(address: Address): string {
  if (address.kind === 'channel.messages') return address.subtopic ? `channels/${address.channel}/messages/${address.subtopic}` : `channels/${address.channel}/messages`;
  if (address.kind === 'enrolment') return `enrolment/${address.operation}`;
  if (address.kind === 'org.events') return ['orgs', address.org, 'events', ...address.rest].join('/');
  return ['devices', address.device, address.family, ...address.rest].join('/');
}

/** The topic of a channel's messages with this subtopic (the hot path of delivery: no object built). */
export function channelTopic(channel: string, subtopic: string): string {
  return subtopic ? `channels/${channel}/messages/${subtopic}` : `channels/${channel}/messages`;
}

/** Why an address is refused on an edge that does not serve it: one answer on every edge. */
export function notServed(address: DeviceResource | EnrolmentTopic | OrgEvents): string {
  if (address.kind === 'enrolment') return 'enrolment/… topics are MQTT only: over HTTP, POST /enrol and POST /renew';
  if (address.kind === 'org.events') return 'orgs/<id>/events is subscribed to over MQTT with a user token; over HTTP, GET /orgs/<id>/events and the WebSocket /ws/orgs/<id>/events';
  if (address.family === 'presence') return 'devices/<id>/presence takes heartbeats over HTTP and CoAP (POST); an MQTT device is present while it is connected';
  if (address.family === 'twin') return 'device twins are read and written over MQTT (devices/<id>/twin/get, …/update), CoAP and HTTP GET/PATCH /devices/<id>/twin (docs/twins.md), not here';
  return `devices/<id>/${address.family} is reserved for device ${address.family} and not served yet`;
}
