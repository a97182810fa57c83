/**
 * The fleet event stream: one per organization, of lifecycle facts and of every change a user makes
 * through the API (the audit log). Types are stable dotted names (`<subject>.<what happened>`); a
 * type once published is never renamed or given another meaning. docs/events.md lists them from
 * this table (`npm run docs`).
 */
export const eventTypes = {
  'org.created': 'An organization was created (its creator becomes its owner)',
  'org.updated': 'The organization was renamed',
  'org.deleted': 'The organization was deleted (seen live only: its events go with it)',
  'member.added': 'A member was added, or accepted an invitation',
  'member.updated': "A member's role was changed",
  'member.removed': 'A member was removed, or left',
  'invitation.created': 'Someone was invited into the organization',
  'invitation.deleted': 'An invitation was withdrawn or declined',
  'device.created': 'A device was created (by a user, or on first enrolment)',
  'device.updated': "A device's name, tags or metadata were changed",
  'device.deleted': 'A device was deleted',
  'device.enabled': 'A device was enabled',
  'device.disabled': 'A device was disabled: it is refused on every protocol',
  'device.secret_rotated': "A device's secret was rotated",
  'device.connected': 'A device connected (MQTT, WebSocket, CoAP)',
  'device.disconnected': 'A device disconnected or was cut off',
  'device.enrolled': 'A device enrolled and got its first certificate',
  'certificate.revoked': "A device certificate was revoked: the device's sessions that use it end",
  'channel.created': 'A channel was created',
  'channel.updated': 'A channel was changed',
  'channel.deleted': 'A channel was deleted',
  'group.created': 'A group was created',
  'group.updated': "A group was changed, or devices were added to or taken out of it",
  'group.deleted': 'A group was deleted',
  'connection.created': 'Devices were connected to channels',
  'connection.deleted': 'Devices were disconnected from channels',
  'registration.created': 'A device was registered for enrolment',
  'registration.updated': 'A registration was suspended, resumed, reset or revoked',
  'registration.deleted': 'A registration was deleted',
  'enrolment_token.created': 'An enrolment token was made',
  'enrolment_token.deleted': 'An enrolment token was withdrawn',
  'manufacturer_ca.created': "A device maker's CA was registered",
  'manufacturer_ca.updated': "A device maker's CA was changed",
  'manufacturer_ca.deleted': "A device maker's CA was removed",
  'dead_letter.deleted': 'Dead letters were deleted',
  'twin.updated': "A device twin changed: desired, reported, tags or refusals (data: twin name, version, the patch)",
  'twin.delta': "A change of desired state left a delta for the device to apply (data: twin name, version, delta)",
  'twin.rejected': 'The device declared desired values it cannot apply (data: twin name, version, pointers and reasons)',
  'api.change': 'Any other change made through the API (data: method, route, status)',
} as const satisfies Record<string, string>;

export type EventType = keyof typeof eventTypes;

/** Events after which live followers of the organization are authorised again: who may read its events may have changed. */
export const membershipTypes: ReadonlySet<string> = new Set<EventType>(['member.removed', 'member.updated', 'org.deleted']);

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventTypes, type);
}

export type ActorKind = 'user' | 'device' | 'system';

/** Who caused an event: a user (the audit log), a device, or the platform itself. */
export interface Actor {
  kind: ActorKind;
  id?: string;
}

/** What an event is about: `{ kind: 'device', id: <device id> }`, `{ kind: 'channel', … }`, `{ kind: 'org', … }`. */
export interface Subject {
  kind: string;
  id: string;
}

/** What a service records. */
export interface NewEvent {
  orgId: string;
  type: EventType;
  actor: Actor;
  subject: Subject;
  data?: Record<string, unknown>;
}

/** An event as it is stored and shown (HTTP, WebSocket, MQTT: the same JSON). */
export interface FleetEvent {
  id: string;
  org_id: string;
  type: EventType;
  time: string;
  actor: { kind: ActorKind; id: string | null };
  subject: Subject;
  data: Record<string, unknown>;
}

/** Where services record events: the EventLog, or nothing (a service used without one). */
export interface EventRecorder {
  record(event: NewEvent): void;
}

export const noEvents: EventRecorder = { record: () => {} };

const typePattern = /^[a-z_]+(\.[a-z_]+)*(\.\*)?$|^\*$/;

/**
 * A filter of event types: a comma-separated list of types or prefixes (`device.*`, `*` every
 * type). Returns the parts, or why the text is none. Unknown exact types are refused (a typo would
 * otherwise match nothing, silently).
 */
export function parseTypeFilter(text: string): { ok: true; exact: string[]; prefixes: string[] } | { ok: false; error: string } {
  const exact: string[] = [];
  const prefixes: string[] = [];
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) return { ok: false, error: 'type: one or more event types or prefixes, e.g. device.* or device.created,twin.updated' };
  if (parts.length > 50) return { ok: false, error: 'type: at most 50 types or prefixes' };
  for (const p of parts) {
    if (p.length > 64 || !typePattern.test(p)) return { ok: false, error: `type ${JSON.stringify(p.slice(0, 64))}: a dotted event type such as device.created, or a prefix such as device.*` };
    if (p === '*') prefixes.push('');
    else if (p.endsWith('.*')) prefixes.push(p.slice(0, -1));
    else if (!isEventType(p)) return { ok: false, error: `type ${p} is not an event type (docs/events.md lists them); a prefix ends in .*` };
    else exact.push(p);
  }
  return { ok: true, exact, prefixes };
}

/** Whether a type passes a parsed filter. */
export function typeMatches(filter: { exact: string[]; prefixes: string[] }, type: string): boolean {
  return filter.exact.includes(type) || filter.prefixes.some((p) => type.startsWith(p));
}

/** Markdown table of the event types, for docs/events.md. */
export function eventTypeTable(): string {
  return ['| Type | Meaning |', '|---|---|', ...Object.entries(eventTypes).map(([t, m]) => `| \`${t}\` | ${m} |`)].join('\n');
}
