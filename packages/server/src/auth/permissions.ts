/**
 * What each organization role may do. docs/permissions.md is generated from this table
 * (`npm run docs`), and tests check every route against it.
 */
export const orgRoles = ['owner', 'admin', 'operator', 'viewer'] as const;
export type OrgRole = (typeof orgRoles)[number];

export const actions = [
  'org:read',
  'org:update',
  'org:delete',
  'members:read',
  'members:write',
  'devices:read',
  'devices:write',
  'channels:read',
  'channels:write',
  'groups:read',
  'groups:write',
  'connections:read',
  'connections:write',
  'messages:read',
  'messages:publish',
  'dead-letters:read',
  'dead-letters:write',
  'identity:read',
  'identity:write',
  'twins:read',
  'twins:write',
  'events:read',
] as const;
export type Action = (typeof actions)[number];

const read: Action[] = ['org:read', 'members:read', 'devices:read', 'channels:read', 'groups:read', 'connections:read', 'messages:read', 'identity:read', 'twins:read', 'events:read'];
const operate: Action[] = [...read, 'devices:write', 'channels:write', 'groups:write', 'connections:write', 'messages:publish', 'identity:write', 'twins:write'];
const administer: Action[] = [...operate, 'org:update', 'members:write', 'dead-letters:read', 'dead-letters:write'];

export const rolePermissions: Record<OrgRole, ReadonlySet<Action>> = {
  viewer: new Set(read),
  operator: new Set(operate),
  admin: new Set(administer),
  owner: new Set([...administer, 'org:delete']),
};

export const actionDescriptions: Record<Action, string> = {
  'org:read': 'See the organization',
  'org:update': 'Rename the organization',
  'org:delete': 'Delete the organization and everything in it',
  'members:read': 'List members and their roles',
  'members:write': 'Add, change and remove members (only owners may grant, change or remove the owner role)',
  'devices:read': 'List and read devices',
  'devices:write': 'Create, update, enable/disable, delete devices and rotate their secrets',
  'channels:read': 'List and read channels',
  'channels:write': 'Create, update and delete channels',
  'groups:read': 'List and read groups and their devices',
  'groups:write': 'Create, update and delete groups and change their devices',
  'connections:read': "List a channel's devices and a device's channels",
  'connections:write': 'Connect and disconnect devices and channels',
  'messages:read': "Read a channel's stored messages",
  'messages:publish': 'Publish to a channel with a user token',
  'dead-letters:read': 'List and read the messages that could not be stored, payloads included',
  'dead-letters:write': 'Delete dead letters',
  'identity:read': 'List registrations, enrolment tokens (never the token itself), certificates and the identity audit trail',
  'identity:write': 'Register devices, make enrolment tokens, suspend, reset and revoke registrations, revoke certificates',
  'twins:read': "Read devices' twins, their history, and query the fleet by twin fields",
  'twins:write': "Change twins' desired state and tags, and the organization's twin limits",
  'events:read': "List and follow the organization's fleet events and audit log (HTTP, WebSocket, MQTT)",
};

export function roleAllows(role: OrgRole, action: Action): boolean {
  return rolePermissions[role].has(action);
}

/** Markdown table of the permissions, for docs/permissions.md. */
export function permissionTable(): string {
  const head = `| Action | Meaning | ${orgRoles.join(' | ')} |`;
  const sep = `|---|---|${orgRoles.map(() => ':-:').join('|')}|`;
  const rows = actions.map((a) => `| \`${a}\` | ${actionDescriptions[a]} | ${orgRoles.map((r) => (roleAllows(r, a) ? '✓' : '')).join(' | ')} |`);
  return [head, sep, ...rows].join('\n');
}
