import type { Statement } from 'better-sqlite3';
import type { Database } from '../db/index.js';

export interface DeviceIdentity {
  readonly id: string;
  readonly orgId: string;
  readonly enabled: boolean;
}

export interface ChannelAccess {
  /** The channel's organization, or undefined when the channel does not exist. */
  readonly orgId: string | undefined;
  /** Bit set of connection types: publish = 1, subscribe = 2. */
  readonly mask: number;
  /** The channel's content type for payloads that come without one; undefined when the channel does not exist. */
  readonly contentType: string | undefined;
}

export const accessBits = { publish: 1, subscribe: 2 } as const;
export type AccessAction = keyof typeof accessBits;

/**
 * The two lookups behind every device authorization decision, as prepared statements on
 * whichever database runs (this is a hot path: no query builder).
 */
export interface AccessStore {
  deviceBySecretHash(hash: string): Promise<DeviceIdentity | undefined>;
  deviceById(id: string): Promise<DeviceIdentity | undefined>;
  channelAccess(deviceId: string, channelId: string): Promise<ChannelAccess>;
  /** Whether the platform issued this certificate (serial, lowercase hex) to this device and it is not revoked. */
  certificateActive(serial: string, deviceId: string): Promise<boolean>;
}

// a device with a registration (docs/identity.md) is refused while it is not enrolled: suspended, revoked, reset
const deviceColumns = "id, org_id, status, (SELECT state FROM device_registrations r WHERE r.device_id = devices.id) AS registration";
const sqlDeviceBySecret = `SELECT ${deviceColumns} FROM devices WHERE secret_hash = ?`;
const sqlDeviceById = `SELECT ${deviceColumns} FROM devices WHERE id = ?`;
const sqlCertificateActive = "SELECT 1 AS ok FROM device_certificates WHERE serial = ? AND device_id = ? AND status = 'active'";
const sqlChannelAccess = 'SELECT ch.org_id AS org_id, ch.content_type AS content_type, cn.type AS type FROM channels ch LEFT JOIN connections cn ON cn.channel_id = ch.id AND cn.device_id = ? WHERE ch.id = ?';

interface DeviceRow {
  id: string;
  org_id: string;
  status: string;
  registration: string | null;
}
interface AccessRow {
  org_id: string;
  content_type: string;
  type: 'publish' | 'subscribe' | null;
}

function toIdentity(row: DeviceRow | undefined): DeviceIdentity | undefined {
  return row && { id: row.id, orgId: row.org_id, enabled: row.status === 'enabled' && (row.registration === null || row.registration === 'enrolled') };
}

function toAccess(rows: AccessRow[]): ChannelAccess {
  let mask = 0;
  for (const r of rows) if (r.type) mask |= accessBits[r.type];
  return { orgId: rows[0]?.org_id, mask, contentType: rows[0]?.content_type };
}

export function createAccessStore(db: Database): AccessStore {
  if (db.sqlite) {
    const bySecret: Statement<[string], DeviceRow> = db.sqlite.prepare(sqlDeviceBySecret);
    const byId: Statement<[string], DeviceRow> = db.sqlite.prepare(sqlDeviceById);
    const access: Statement<[string, string], AccessRow> = db.sqlite.prepare(sqlChannelAccess);
    const certificate: Statement<[string, string], { ok: number }> = db.sqlite.prepare(sqlCertificateActive);
    return {
      certificateActive: async (serial, deviceId) => certificate.get(serial, deviceId) !== undefined,
      deviceBySecretHash: async (hash) => toIdentity(bySecret.get(hash)),
      deviceById: async (id) => toIdentity(byId.get(id)),
      channelAccess: async (deviceId, channelId) => toAccess(access.all(deviceId, channelId)),
    };
  }
  const pool = db.pool!;
  const pgText = (s: string) => s.replace(/\?/g, (() => { let i = 0; return () => `$${++i}`; })());
  const q = {
    bySecret: pgText(sqlDeviceBySecret),
    byId: pgText(sqlDeviceById),
    access: pgText(sqlChannelAccess),
    certificate: pgText(sqlCertificateActive),
  };
  return {
    certificateActive: async (serial, deviceId) => (await pool.query({ name: 'fw_certificate_active', text: q.certificate, values: [serial, deviceId] })).rows.length > 0,
    deviceBySecretHash: async (hash) => toIdentity((await pool.query<DeviceRow>({ name: 'fw_device_by_secret', text: q.bySecret, values: [hash] })).rows[0]),
    deviceById: async (id) => toIdentity((await pool.query<DeviceRow>({ name: 'fw_device_by_id', text: q.byId, values: [id] })).rows[0]),
    channelAccess: async (deviceId, channelId) => toAccess((await pool.query<AccessRow>({ name: 'fw_channel_access', text: q.access, values: [deviceId, channelId] })).rows),
  };
}
