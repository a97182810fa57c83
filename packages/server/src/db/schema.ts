/** Row types as Kysely sees them. JSON columns are TEXT on SQLite and jsonb on PostgreSQL. */
export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  role: 'admin' | 'user';
  created_at: string;
  updated_at: string;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

export interface MembershipsTable {
  org_id: string;
  user_id: string;
  role: 'owner' | 'admin' | 'operator' | 'viewer';
  created_at: string;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  family_id: string;
  token_hash: string;
  expires_at: string;
  revoked_at: string | null;
  created_at: string;
}

export interface AccessTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  org_id: string;
  actions: unknown;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  created_at: string;
}

export interface DevicesTable {
  id: string;
  org_id: string;
  name: string;
  tags: unknown;
  metadata: unknown;
  status: 'enabled' | 'disabled';
  secret_hash: string;
  created_at: string;
  updated_at: string;
}

export interface ChannelsTable {
  id: string;
  org_id: string;
  name: string;
  tags: unknown;
  metadata: unknown;
  /** What payloads that come without a content type are taken as (channels/content-type.ts). */
  content_type: string;
  created_at: string;
  updated_at: string;
}

export interface GroupsTable {
  id: string;
  org_id: string;
  name: string;
  description: string;
  tags: unknown;
  metadata: unknown;
  created_at: string;
  updated_at: string;
}

export interface GroupDevicesTable {
  group_id: string;
  device_id: string;
  created_at: string;
}

export interface ConnectionsTable {
  org_id: string;
  channel_id: string;
  device_id: string;
  type: 'publish' | 'subscribe';
  created_at: string;
}

/** One login session: its refresh tokens share `id` as their family, its access tokens carry it as `sid`. */
export interface AuthSessionsTable {
  id: string;
  user_id: string;
  created_at: string;
  ended_at: string | null;
}

/** An invitation into an organization, by email; membership starts when the invited user accepts. */
export interface OrgInvitationsTable {
  id: string;
  org_id: string;
  email: string;
  role: 'owner' | 'admin' | 'operator' | 'viewer';
  invited_by: string | null;
  created_at: string;
  expires_at: string;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: string;
}

export interface DeadLettersTable {
  id: string;
  org_id: string;
  channel: string;
  subtopic: string;
  publisher: string;
  protocol: string;
  content_type: string;
  payload: Buffer;
  received_at: string;
  failed_at: string;
  error: string;
}

/** A login rate-limit counter (auth/rate-limit.ts): `key` is a digest of what is counted (an account, a client address). */
export interface LoginWindowsTable {
  key: string;
  /** Unix ms. */
  window_start: number;
  count: number;
}

export interface CertificateAuthoritiesTable {
  id: string;
  kind: 'root' | 'issuing';
  org_id: string | null;
  certificate: string;
  /** Encrypted under the server key (identity/pki.ts encryptPrivateKey). */
  private_key: string;
  fingerprint: string;
  not_after: string;
  crl_number: number;
  created_at: string;
}

/** The TLS listeners' certificate the platform issued itself (identity/listener.ts). */
export interface ListenerCertificatesTable {
  /** The names it is for, canonical: sorted, comma-separated. */
  hosts: string;
  certificate: string;
  /** Encrypted under the server key, as the CAs' keys are. */
  private_key: string;
  fingerprint: string;
  not_after: string;
  created_at: string;
}

/** Per-organization twin limits (src/twins/); an organization without a row has the defaults. */
export interface TwinSettingsTable {
  org_id: string;
  max_section_bytes: number;
  max_depth: number;
  updated_at: string;
}

export type RegistrationState = 'pending' | 'enrolled' | 'suspended' | 'revoked';

export interface DeviceRegistrationsTable {
  id: string;
  org_id: string;
  serial: string;
  model: string;
  key_fingerprint: string | null;
  channel_ids: unknown;
  group_ids: unknown;
  state: RegistrationState;
  device_id: string | null;
  enrolled_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ManufacturerCasTable {
  id: string;
  org_id: string;
  name: string;
  certificate: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  fingerprint: string;
  /** The CA's subject as node:crypto writes it (one `key=value` a line): a factory certificate's issuer finds it. */
  subject: string;
  not_after: string;
  /** The allow-list: serials, `*` matching any run of characters. */
  serials: unknown;
  channel_ids: unknown;
  group_ids: unknown;
  created_at: string;
  updated_at: string;
}

export interface EnrolmentTokensTable {
  id: string;
  org_id: string;
  token_hash: string;
  serial_pattern: string | null;
  expires_at: string;
  used_at: string | null;
  registration_id: string | null;
  created_by: string | null;
  created_at: string;
}

export interface DeviceCertificatesTable {
  serial: string;
  org_id: string;
  device_id: string;
  registration_id: string | null;
  fingerprint: string;
  key_fingerprint: string;
  request_hash: string;
  certificate: string;
  not_before: string;
  not_after: string;
  status: 'active' | 'revoked';
  revoked_at: string | null;
  revocation_reason: string | null;
  /** The certificate this one renewed (its serial): revoked as superseded when the device first uses this one. */
  replaces: string | null;
  created_at: string;
}

export interface IdentityEventsTable {
  id: string;
  org_id: string | null;
  registration_id: string | null;
  action: string;
  outcome: 'ok' | 'refused';
  code: string | null;
  detail: string;
  actor: string;
  remote: string | null;
  created_at: string;
}

export interface FleetEventsTable {
  id: string;
  org_id: string;
  type: string;
  actor_kind: 'user' | 'device' | 'system';
  actor_id: string | null;
  subject_kind: string;
  subject_id: string;
  /** JSON object (text on SQLite). */
  data: unknown;
  created_at: string;
}

export type PresenceState = 'online' | 'offline' | 'idle';

/** Times in the presence tables are Unix ms. */
export interface DevicePresenceTable {
  device_id: string;
  org_id: string;
  state: PresenceState;
  since: number;
  last_seen: number | null;
  protocol: string | null;
  node: string | null;
  reason: string | null;
  interval_seconds: number | null;
  /** When an idle device turns offline (last seen + 1.5 × its interval). */
  deadline: number | null;
}

export interface PresenceConnectionsTable {
  connection_key: string;
  device_id: string;
  org_id: string;
  node: string;
  protocol: string;
  client_id: string;
  since: number;
}

export interface PresenceNodesTable {
  node: string;
  seen_at: number;
}

export interface PresenceChangesTable {
  device_id: string;
  org_id: string;
  state: PresenceState;
  reason: string | null;
  protocol: string | null;
  node: string | null;
  at: number;
}

export interface Tables {
  users: UsersTable;
  organizations: OrganizationsTable;
  memberships: MembershipsTable;
  refresh_tokens: RefreshTokensTable;
  access_tokens: AccessTokensTable;
  devices: DevicesTable;
  channels: ChannelsTable;
  groups: GroupsTable;
  group_devices: GroupDevicesTable;
  connections: ConnectionsTable;
  auth_sessions: AuthSessionsTable;
  org_invitations: OrgInvitationsTable;
  schema_migrations: SchemaMigrationsTable;
  dead_letters: DeadLettersTable;
  login_windows: LoginWindowsTable;
  certificate_authorities: CertificateAuthoritiesTable;
  listener_certificates: ListenerCertificatesTable;
  device_registrations: DeviceRegistrationsTable;
  enrolment_tokens: EnrolmentTokensTable;
  device_certificates: DeviceCertificatesTable;
  identity_events: IdentityEventsTable;
  manufacturer_cas: ManufacturerCasTable;
  twin_settings: TwinSettingsTable;
  fleet_events: FleetEventsTable;
  device_presence: DevicePresenceTable;
  presence_connections: PresenceConnectionsTable;
  presence_nodes: PresenceNodesTable;
  presence_changes: PresenceChangesTable;
}
