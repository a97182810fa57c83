import { createHash } from 'node:crypto';
import type { Database } from './database.js';

/**
 * Versioned migrations, one SQL text per dialect. An applied migration is recorded with the
 * checksum of the text that ran; if a file changes afterwards, migrate() refuses to go on.
 * Never edit an applied migration: add a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const ts = { sqlite: 'TEXT NOT NULL', postgres: 'TIMESTAMPTZ NOT NULL' };
const tsNull = { sqlite: 'TEXT', postgres: 'TIMESTAMPTZ' };
const json = { sqlite: "TEXT NOT NULL DEFAULT '{}'", postgres: "JSONB NOT NULL DEFAULT '{}'" };
const jsonArr = { sqlite: "TEXT NOT NULL DEFAULT '[]'", postgres: "JSONB NOT NULL DEFAULT '[]'" };

function both(render: (t: { ts: string; tsNull: string; json: string; jsonArr: string }) => string): { sqlite: string; postgres: string } {
  return {
    sqlite: render({ ts: ts.sqlite, tsNull: tsNull.sqlite, json: json.sqlite, jsonArr: jsonArr.sqlite }),
    postgres: render({ ts: ts.postgres, tsNull: tsNull.postgres, json: json.postgres, jsonArr: jsonArr.postgres }),
  };
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'foundation',
    ...both(
      (t) => `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE TABLE organizations (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE TABLE memberships (
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
  created_at ${t.ts},
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  family_id TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires_at ${t.ts},
  revoked_at ${t.tsNull},
  created_at ${t.ts}
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE access_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  actions ${t.jsonArr},
  expires_at ${t.ts},
  revoked_at ${t.tsNull},
  last_used_at ${t.tsNull},
  created_at ${t.ts}
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  tags ${t.jsonArr},
  metadata ${t.json},
  status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
  secret_hash TEXT NOT NULL UNIQUE,
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX devices_org_created ON devices (org_id, created_at);
CREATE INDEX devices_org_name ON devices (org_id, name);
CREATE TABLE channels (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  tags ${t.jsonArr},
  metadata ${t.json},
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX channels_org_created ON channels (org_id, created_at);
CREATE INDEX channels_org_name ON channels (org_id, name);
CREATE TABLE groups (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  tags ${t.jsonArr},
  metadata ${t.json},
  created_at ${t.ts},
  updated_at ${t.ts}
);
CREATE INDEX groups_org_created ON groups (org_id, created_at);
CREATE TABLE group_devices (
  group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  created_at ${t.ts},
  PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_devices_device ON group_devices (device_id);
CREATE TABLE connections (
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  type TEXT NOT NULL CHECK (type IN ('publish', 'subscribe')),
  created_at ${t.ts},
  PRIMARY KEY (device_id, channel_id, type)
);
CREATE INDEX connections_channel ON connections (channel_id, device_id);
`,
    ),
  },
  {
    version: 2,
    name: 'message storage',
    // One row per SenML record (and per numeric top-level field of a JSON document). Redelivery is
    // recognised per message, not per record: `message_ids` holds one row per stored message, and the
    // writer stores the rows of a message only when it recorded the id in the same transaction. The
    // record table carries no key of its own and one index, (channel, time): a per-name index cost
    // more than half the insert time on both databases (bench/writer); per-name reads scan the
    // channel's time range instead (bench/readers), and `latest_values` keeps the newest record of
    // each (channel, name, subtopic, publisher) for GET …/latest. Time is Unix seconds as a double,
    // as SenML has it. Retention prunes by message id (UUID v7: receive time): on SQLite through the
    // last rowid of each message's records (`message_ids.last_row`), on PostgreSQL through a BRIN index.
    sqlite: `
CREATE TABLE message_ids (
  id TEXT PRIMARY KEY,
  last_row INTEGER
) WITHOUT ROWID;
CREATE TABLE messages (
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  name TEXT NOT NULL,
  unit TEXT,
  time REAL NOT NULL,
  update_time REAL,
  value REAL,
  string_value TEXT,
  bool_value INTEGER,
  data_value TEXT,
  sum REAL
);
CREATE INDEX messages_channel_time ON messages (channel, time);
CREATE TABLE latest_values (
  channel TEXT NOT NULL,
  name TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  protocol TEXT NOT NULL,
  unit TEXT,
  time REAL NOT NULL,
  update_time REAL,
  value REAL,
  string_value TEXT,
  bool_value INTEGER,
  data_value TEXT,
  sum REAL,
  PRIMARY KEY (channel, name, subtopic, publisher)
) WITHOUT ROWID;
CREATE TABLE message_documents (
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  time REAL NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (id, seq)
) WITHOUT ROWID;
CREATE INDEX message_documents_channel_time ON message_documents (channel, time);
CREATE TABLE message_payloads (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  content_type TEXT NOT NULL,
  time REAL NOT NULL,
  size INTEGER NOT NULL,
  truncated INTEGER NOT NULL,
  payload BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX message_payloads_channel_time ON message_payloads (channel, time);
`,
    postgres: `
CREATE TABLE message_ids (
  id TEXT PRIMARY KEY
);
CREATE TABLE messages (
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  name TEXT NOT NULL,
  unit TEXT,
  time DOUBLE PRECISION NOT NULL,
  update_time DOUBLE PRECISION,
  value DOUBLE PRECISION,
  string_value TEXT,
  bool_value BOOLEAN,
  data_value TEXT,
  sum DOUBLE PRECISION
);
CREATE INDEX messages_channel_time ON messages (channel, time);
CREATE INDEX messages_id ON messages USING brin (id);
CREATE TABLE latest_values (
  channel TEXT NOT NULL,
  name TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  protocol TEXT NOT NULL,
  unit TEXT,
  time DOUBLE PRECISION NOT NULL,
  update_time DOUBLE PRECISION,
  value DOUBLE PRECISION,
  string_value TEXT,
  bool_value BOOLEAN,
  data_value TEXT,
  sum DOUBLE PRECISION,
  PRIMARY KEY (channel, name, subtopic, publisher)
) WITH (fillfactor = 50);
CREATE TABLE message_documents (
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  time DOUBLE PRECISION NOT NULL,
  document JSONB NOT NULL,
  PRIMARY KEY (id, seq)
);
CREATE INDEX message_documents_channel_time ON message_documents (channel, time);
CREATE TABLE message_payloads (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  content_type TEXT NOT NULL,
  time DOUBLE PRECISION NOT NULL,
  size INTEGER NOT NULL,
  truncated BOOLEAN NOT NULL,
  payload BYTEA NOT NULL
);
CREATE INDEX message_payloads_channel_time ON message_payloads (channel, time);
`,
  },
  {
    version: 3,
    name: 'mqtt state',
    ...mqttState(),
  },
  {
    version: 4,
    name: 'compact records',
    ...compactRecords(),
  },
  {
    version: 5,
    name: 'dead letters',
    ...deadLetters(),
  },
  {
    version: 6,
    name: 'sessions and invitations',
    ...both(
      (t) => `
CREATE TABLE auth_sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at ${t.ts},
  ended_at ${t.tsNull}
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE TABLE org_invitations (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  email TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
  invited_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at ${t.ts},
  expires_at ${t.ts},
  UNIQUE (org_id, email)
);
CREATE INDEX org_invitations_email ON org_invitations (email);
`,
    ),
  },
  {
    version: 7,
    name: 'channel content type',
    // every channel that exists keeps what the platform assumed of payloads without a type: SenML JSON
    ...both(() => `
ALTER TABLE channels ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/senml+json';
`),
  },
  {
    // login rate limits shared by every process on the database (auth/rate-limit.ts)
    version: 8,
    name: 'login windows',
    ...both(
      () => `
CREATE TABLE login_windows (
  key TEXT PRIMARY KEY,
  window_start BIGINT NOT NULL,
  count INTEGER NOT NULL
);
CREATE INDEX login_windows_start ON login_windows (window_start);
`,
    ),
  },
  {
    // A wildcard SUBSCRIBE reads the retained topics under its filter's literal levels as a range of
    // topics in code point order (src/mqtt/sql-store.ts). SQLite's primary key index already orders
    // text byte by byte, which for UTF-8 is code point order. PostgreSQL's orders by the database's
    // collation, which need not be code point order and which LIKE cannot use for a prefix either,
    // so it read every retained topic: this index orders them as the C collation does.
    version: 9,
    name: 'retained topic order',
    sqlite: `
-- nothing to do: the primary key index on mqtt_retained (topic) serves the range
`,
    postgres: `
CREATE INDEX mqtt_retained_topic_c ON mqtt_retained (topic COLLATE "C");
`,
  },
  {
    // SQLite's writer (the only one: one process owns the file) holds the newest values of its
    // batches for a moment and writes them to latest_values together (src/storage/sink.ts): a source
    // sending many messages a second costs one upsert per name and moment, not one per record.
    // `latest_watermark.row` is the last record (rowid of messages) latest_values reflects; the
    // records after it are merged in by the readers and, after a crash, by the next writer.
    // PostgreSQL's writers, several at once across nodes, upsert with every batch.
    version: 10,
    name: 'latest values watermark',
    sqlite: `
CREATE TABLE latest_watermark (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  row INTEGER NOT NULL
);
INSERT INTO latest_watermark (id, row) SELECT 1, COALESCE(MAX(rowid), 0) FROM messages;
`,
    postgres: `
-- nothing to do: every batch upserts its latest values
`,
  },
  {
    // Aggregations over a time range (a chart's averages) read per-minute sums instead of every
    // record. On SQLite, `record_minutes` holds them, in time order so that keeping them up costs
    // the writer an append (an index by name made every write touch a page per name: bench/writer
    // fell from 135k to 25k records/s); the sink rolls up the records after the watermark (a rowid
    // of messages) with the latest values, and retention recomputes the minutes it cuts into.
    // PostgreSQL walks an index by name instead, which costs its writer far less.
    version: 11,
    name: 'aggregations by minute',
    sqlite: `
CREATE TABLE record_minutes (
  channel_key INTEGER NOT NULL,
  minute INTEGER NOT NULL,
  name TEXT NOT NULL,
  source INTEGER NOT NULL,
  n INTEGER NOT NULL,
  nv INTEGER NOT NULL,
  sum REAL,
  min REAL,
  max REAL,
  PRIMARY KEY (channel_key, minute, name, source)
) WITHOUT ROWID;
CREATE TABLE record_minutes_watermark (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  row INTEGER NOT NULL
);
INSERT INTO record_minutes (channel_key, minute, name, source, n, nv, sum, min, max)
  SELECT channel_key, CAST(time / 60 AS INTEGER), name, source, COUNT(*), COUNT(value), SUM(value), MIN(value), MAX(value)
  FROM messages WHERE true GROUP BY 1, 2, 3, 4;
INSERT INTO record_minutes_watermark (id, row) SELECT 1, COALESCE(MAX(rowid), 0) FROM messages;
`,
    postgres: `
CREATE INDEX messages_channel_name_time ON messages (channel_key, name, time) INCLUDE (value);
`,
  },
  {
    // Device identity (docs/identity.md): the platform's CAs (a root, one issuing CA per
    // organization; keys encrypted under the server key), the registry of pre-authorised devices,
    // one-time enrolment tokens (hashed), the certificates issued from CSRs, and an audit trail.
    version: 12,
    name: 'device identity',
    ...both(
      (t) => `
CREATE TABLE certificate_authorities (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('root', 'issuing')),
  org_id TEXT UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
  certificate TEXT NOT NULL,
  private_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  not_after ${t.ts},
  crl_number INTEGER NOT NULL DEFAULT 0,
  created_at ${t.ts},
  CHECK ((kind = 'root') = (org_id IS NULL))
);
CREATE UNIQUE INDEX certificate_authorities_one_root ON certificate_authorities (kind) WHERE kind = 'root';
CREATE TABLE device_registrations (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  serial TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  key_fingerprint TEXT,
  channel_ids ${t.jsonArr},
  group_ids ${t.jsonArr},
  state TEXT NOT NULL CHECK (state IN ('pending', 'enrolled', 'suspended', 'revoked')),
  device_id TEXT UNIQUE REFERENCES devices(id) ON DELETE SET NULL,
  enrolled_at ${t.tsNull},
  created_at ${t.ts},
  updated_at ${t.ts},
  UNIQUE (org_id, serial)
);
CREATE INDEX device_registrations_org_created ON device_registrations (org_id, created_at);
CREATE INDEX device_registrations_key ON device_registrations (key_fingerprint);
CREATE TABLE enrolment_tokens (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  serial_pattern TEXT,
  expires_at ${t.ts},
  used_at ${t.tsNull},
  registration_id TEXT REFERENCES device_registrations(id) ON DELETE SET NULL,
  created_by TEXT,
  created_at ${t.ts}
);
CREATE INDEX enrolment_tokens_org_created ON enrolment_tokens (org_id, created_at);
CREATE TABLE device_certificates (
  serial TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  registration_id TEXT REFERENCES device_registrations(id) ON DELETE SET NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  key_fingerprint TEXT NOT NULL,
  request_hash TEXT NOT NULL UNIQUE,
  certificate TEXT NOT NULL,
  not_before ${t.ts},
  not_after ${t.ts},
  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
  revoked_at ${t.tsNull},
  revocation_reason TEXT,
  created_at ${t.ts}
);
CREATE INDEX device_certificates_device ON device_certificates (device_id);
CREATE INDEX device_certificates_org_expiry ON device_certificates (org_id, not_after);
CREATE TABLE identity_events (
  id TEXT PRIMARY KEY,
  org_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
  registration_id TEXT,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'refused')),
  code TEXT,
  detail TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL,
  remote TEXT,
  created_at ${t.ts}
);
CREATE INDEX identity_events_org ON identity_events (org_id, created_at);
`,
    ),
  },
  {
    version: 13,
    name: 'certificate renewal',
    // the certificate a renewal replaces: it stays active until the device first uses the new one
    ...both(() => `ALTER TABLE device_certificates ADD COLUMN replaces TEXT;`),
  },
  {
    version: 14,
    name: 'manufacturer CAs',
    // a device maker's CA: a device whose factory certificate it signed enrols with that
    // certificate, when its serial is on the allow-list (docs/identity.md)
    ...both(
      (t) => `
CREATE TABLE manufacturer_cas (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  certificate TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  subject TEXT NOT NULL,
  not_after ${t.ts},
  serials ${t.jsonArr},
  channel_ids ${t.jsonArr},
  group_ids ${t.jsonArr},
  created_at ${t.ts},
  updated_at ${t.ts},
  UNIQUE (org_id, fingerprint)
);
CREATE INDEX manufacturer_cas_subject ON manufacturer_cas (subject);
`,
    ),
  },
  {
    version: 15,
    name: 'listener certificates',
    // the TLS listeners' certificate the platform issues itself (identity/listener.ts), one per list
    // of host names, so that every process with the same FLEETWIRE_TLS_HOSTS serves the same one
    ...both(
      (t) => `
CREATE TABLE listener_certificates (
  hosts TEXT PRIMARY KEY,
  certificate TEXT NOT NULL,
  private_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  not_after ${t.ts},
  created_at ${t.ts}
);
`,
    ),
  },
  {
    version: 16,
    name: 'device twins',
    // a twin per device and name (src/twins/): its sections as JSON, one version for all of them,
    // and every accepted change kept as history; PostgreSQL indexes the sections for fleet queries
    sqlite: twins('TEXT NOT NULL', "TEXT NOT NULL DEFAULT '{}'", ''),
    postgres: twins('TIMESTAMPTZ NOT NULL', "JSONB NOT NULL DEFAULT '{}'", `
CREATE INDEX twins_reported ON twins USING GIN (reported jsonb_path_ops);
CREATE INDEX twins_desired ON twins USING GIN (desired jsonb_path_ops);
CREATE INDEX twins_tags ON twins USING GIN (tags jsonb_path_ops);
`),
  },
  {
    version: 17,
    name: 'device presence',
    // presence/repository.ts: the current state per device, the live connections it rests on (one
    // row per MQTT connection, under the node that serves it), each node's heartbeat, and the
    // history of changes. Times are Unix ms (BIGINT): compared and summed, never shown as stored.
    ...both(
      () => `
CREATE TABLE device_presence (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  org_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('online', 'offline', 'idle')),
  since BIGINT NOT NULL,
  last_seen BIGINT,
  protocol TEXT,
  node TEXT,
  reason TEXT,
  interval_seconds INTEGER,
  deadline BIGINT
);
CREATE INDEX device_presence_org_state ON device_presence (org_id, state);
CREATE INDEX device_presence_deadline ON device_presence (deadline) WHERE state = 'idle';
CREATE TABLE presence_connections (
  connection_key TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  node TEXT NOT NULL,
  protocol TEXT NOT NULL,
  client_id TEXT NOT NULL,
  since BIGINT NOT NULL
);
CREATE INDEX presence_connections_device ON presence_connections (device_id);
CREATE INDEX presence_connections_node ON presence_connections (node);
CREATE TABLE presence_nodes (
  node TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL
);
CREATE TABLE presence_changes (
  device_id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  protocol TEXT,
  node TEXT,
  at BIGINT NOT NULL
);
CREATE INDEX presence_changes_device_at ON presence_changes (device_id, at);
CREATE INDEX presence_changes_at ON presence_changes (at);
`,
    ),
  },
  {
    version: 18,
    name: 'fleet events',
    // one stream per organization of lifecycle facts and API changes (src/events/), listed by time,
    // by subject (a device's history) and by type; pruned after FLEETWIRE_EVENT_RETENTION
    ...both(
      (t) => `
CREATE TABLE fleet_events (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'device', 'system')),
  actor_id TEXT,
  subject_kind TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  data ${t.json},
  created_at ${t.ts}
);
CREATE INDEX fleet_events_org_time ON fleet_events (org_id, created_at, id);
CREATE INDEX fleet_events_org_subject_time ON fleet_events (org_id, subject_id, created_at);
CREATE INDEX fleet_events_org_type_time ON fleet_events (org_id, type, created_at);
CREATE INDEX fleet_events_time ON fleet_events (created_at);
`,
    ),
  },
];

/**
 * Messages the writer could not store although the database took others (src/storage/writer.ts),
 * kept with the reason until an organization's admin deletes them. No foreign key to the
 * organization: the writer must be able to set a message aside whatever happened to its tenant.
 */
function deadLetters(): { sqlite: string; postgres: string } {
  const render = (t: { ts: string; bytes: string }) => `
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  content_type TEXT NOT NULL,
  payload ${t.bytes} NOT NULL,
  received_at ${t.ts},
  failed_at ${t.ts},
  error TEXT NOT NULL
);
CREATE INDEX dead_letters_org ON dead_letters (org_id, id);
`;
  return { sqlite: render({ ts: ts.sqlite, bytes: 'BLOB' }), postgres: render({ ts: ts.postgres, bytes: 'BYTEA' }) };
}

/**
 * Record rows without the text that repeats: the channel, and the (channel, subtopic, publisher,
 * protocol) a message came from, become integer keys into two small dictionaries, and the message
 * id an integer key of `message_ids`. A row of a 10-record pack went from about 200 bytes to about
 * 60; a bare insert from 4.1 to 1.7 µs of CPU on SQLite and from 150–165 k to 215–285 k rows/s on
 * PostgreSQL (bench/writer; docs/storage.md). Records of the same time order by (msg, seq): the
 * order messages were stored in, then pack order. `latest_values` is keyed the same way: one row per
 * source and name (the readers take the newest of a name across sources). `message_records` and
 * `latest_records` show both with the columns the readers ask for. Existing rows are rewritten.
 */
function compactRecords(): { sqlite: string; postgres: string } {
  const valueColumns = ['name', 'unit', 'time', 'update_time', 'value', 'string_value', 'bool_value', 'data_value', 'sum'];
  const latestValueColumns = valueColumns.filter((c) => c !== 'name');
  /** What a record row and a latest value both hold: its source and message keys, then its own values. */
  const recordColumns = (d: { real: string; bool: string }) => `source INTEGER NOT NULL,
  msg BIGINT NOT NULL,
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  unit TEXT,
  time ${d.real} NOT NULL,
  update_time ${d.real},
  value ${d.real},
  string_value TEXT,
  bool_value ${d.bool},
  data_value TEXT,
  sum ${d.real}`;
  const render = (d: { key: string; bigKey: string; real: string; bool: string; lastRow: string; lastRowFill: string; indexes: string; latestTail: string }) => `
CREATE TABLE message_channels (
  key ${d.key},
  channel TEXT NOT NULL UNIQUE
);
CREATE TABLE message_sources (
  key ${d.key},
  org_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  subtopic TEXT NOT NULL,
  publisher TEXT NOT NULL,
  protocol TEXT NOT NULL,
  UNIQUE (channel, publisher, subtopic, protocol)
);
CREATE TABLE message_ids_compact (
  key ${d.bigKey},
  id TEXT NOT NULL UNIQUE${d.lastRow}
);
CREATE TABLE messages_compact (
  channel_key INTEGER NOT NULL,
  ${recordColumns(d)}
);
INSERT INTO message_channels (channel) SELECT DISTINCT channel FROM messages ORDER BY channel;
INSERT INTO message_sources (org_id, channel, subtopic, publisher, protocol)
  SELECT MIN(org_id), channel, subtopic, publisher, protocol FROM messages GROUP BY channel, publisher, subtopic, protocol ORDER BY channel, publisher, subtopic, protocol;
INSERT INTO message_ids_compact (id) SELECT id FROM message_ids ORDER BY id;
INSERT INTO messages_compact (channel_key, source, msg, seq, ${valueColumns.join(', ')})
  SELECT c.key, s.key, i.key, m.seq, ${valueColumns.map((c) => `m.${c}`).join(', ')}
  FROM messages m
  JOIN message_channels c ON c.channel = m.channel
  JOIN message_sources s ON s.channel = m.channel AND s.publisher = m.publisher AND s.subtopic = m.subtopic AND s.protocol = m.protocol
  JOIN message_ids_compact i ON i.id = m.id
  ORDER BY i.key, m.seq;${d.lastRowFill}
CREATE TABLE latest_compact (
  ${recordColumns(d)},
  PRIMARY KEY (source, name)
)${d.latestTail};
INSERT INTO latest_compact (source, name, msg, seq, ${latestValueColumns.join(', ')})
  SELECT s.key, l.name, i.key, l.seq, ${latestValueColumns.map((c) => `l.${c}`).join(', ')}
  FROM latest_values l
  JOIN message_sources s ON s.channel = l.channel AND s.publisher = l.publisher AND s.subtopic = l.subtopic AND s.protocol = l.protocol
  JOIN message_ids_compact i ON i.id = l.id;
DROP TABLE latest_values;
DROP TABLE messages;
DROP TABLE message_ids;
ALTER TABLE messages_compact RENAME TO messages;
ALTER TABLE message_ids_compact RENAME TO message_ids;
ALTER TABLE latest_compact RENAME TO latest_values;
${d.indexes}
CREATE VIEW message_records AS
  SELECT m.channel_key, m.msg, m.seq, s.channel, s.subtopic, s.publisher, s.protocol, ${valueColumns.map((c) => `m.${c}`).join(', ')}
  FROM messages m
  LEFT JOIN message_sources s ON s.key = m.source;
CREATE VIEW latest_records AS
  SELECT l.source, l.msg, l.seq, s.channel, s.subtopic, s.publisher, s.protocol, l.name, ${latestValueColumns.map((c) => `l.${c}`).join(', ')}
  FROM latest_values l
  JOIN message_sources s ON s.key = l.source;
`;
  return {
    // retention on SQLite finds old records through the last rowid of each message's records
    sqlite: render({
      key: 'INTEGER PRIMARY KEY',
      bigKey: 'INTEGER PRIMARY KEY',
      real: 'REAL',
      bool: 'INTEGER',
      lastRow: ',\n  last_row INTEGER',
      latestTail: ' WITHOUT ROWID',
      lastRowFill: '\nUPDATE message_ids_compact SET last_row = l.last FROM (SELECT msg, MAX(rowid) AS last FROM messages_compact GROUP BY msg) l WHERE l.msg = message_ids_compact.key;',
      indexes: 'CREATE INDEX messages_channel_time ON messages (channel_key, time);',
    }),
    // on PostgreSQL through a BRIN index on the message key (keys grow as messages are stored)
    postgres: render({
      key: 'INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY',
      bigKey: 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY',
      real: 'DOUBLE PRECISION',
      bool: 'BOOLEAN',
      lastRow: '',
      lastRowFill: '',
      latestTail: ' WITH (fillfactor = 50)',
      indexes: 'CREATE INDEX messages_channel_time ON messages (channel_key, time);\nCREATE INDEX messages_msg ON messages USING brin (msg);',
    }),
  };
}

/**
 * The MQTT broker's state that outlives a process (src/mqtt/sql-store.ts): retained messages, and
 * persistent sessions with their subscriptions and the QoS 1/2 messages they still owe a client.
 * Times are Unix milliseconds; JSON columns are text. The node id says which broker process holds
 * a session.
 */
function mqttState(): { sqlite: string; postgres: string } {
  const render = (bytes: string) => `
CREATE TABLE mqtt_retained (
  topic TEXT PRIMARY KEY,
  payload ${bytes} NOT NULL,
  qos INTEGER NOT NULL,
  properties TEXT,
  expires_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE TABLE mqtt_sessions (
  client_id TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  identity TEXT NOT NULL,
  protocol_version INTEGER NOT NULL,
  expiry_seconds BIGINT NOT NULL,
  disconnected_at BIGINT,
  incoming_qos2 TEXT NOT NULL DEFAULT '[]',
  updated_at BIGINT NOT NULL
);
CREATE INDEX mqtt_sessions_node ON mqtt_sessions (node_id);
CREATE TABLE mqtt_subscriptions (
  client_id TEXT NOT NULL,
  key TEXT NOT NULL,
  options TEXT NOT NULL,
  PRIMARY KEY (client_id, key)
);
CREATE TABLE mqtt_session_messages (
  client_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  packet_id INTEGER,
  released INTEGER NOT NULL DEFAULT 0,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload ${bytes} NOT NULL,
  properties TEXT,
  expires_at BIGINT,
  subscription_ids TEXT,
  message_id TEXT,
  PRIMARY KEY (client_id, seq)
);
`;
  return { sqlite: render('BLOB'), postgres: render('BYTEA') };
}

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface MigrationReport {
  applied: { version: number; name: string }[];
  current: number;
}

/**
 * Applies pending migrations in order, each in its own transaction. Refuses (throws) when an
 * applied migration's checksum differs from the code's, or when the database is newer than the code.
 */
export async function migrate(db: Database, list: Migration[] = migrations): Promise<MigrationReport> {
  const dialect = db.kind;
  return db.withMigrationLock(async () => {
    // inside the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL
    await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    const rows = await db.kysely.selectFrom('schema_migrations').selectAll().orderBy('version').execute();
    const known = new Map(list.map((m) => [m.version, m]));
    for (const row of rows) {
      const m = known.get(Number(row.version));
      if (!m) throw new MigrationError(`database is at migration ${row.version} (${row.name}), which this version of Fleetwire does not know; upgrade Fleetwire`);
      const sum = checksum(m[dialect]);
      if (sum !== row.checksum) throw new MigrationError(`migration ${m.version} (${m.name}) was changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ${sum.slice(0, 12)} in the code); refusing to run`);
    }
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: MigrationReport['applied'] = [];
    for (const m of [...list].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      const script = m[dialect];
      try {
        await db.applyMigration(script, { version: m.version, name: m.name, checksum: checksum(script), applied_at: new Date().toISOString() });
      } catch (e) {
        throw new MigrationError(`migration ${m.version} (${m.name}) failed and was rolled back: ${(e as Error).message}`, { cause: e });
      }
      applied.push({ version: m.version, name: m.name });
    }
    const current = Math.max(0, ...list.map((m) => m.version));
    return { applied, current };
  });
}

function twins(ts: string, json: string, indexes: string): string {
  return `
CREATE TABLE twins (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  desired ${json},
  reported ${json},
  tags ${json},
  metadata ${json},
  rejected ${json},
  created_at ${ts},
  updated_at ${ts},
  PRIMARY KEY (device_id, name)
);
CREATE INDEX twins_org ON twins (org_id, name, device_id);
CREATE TABLE twin_history (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  org_id TEXT NOT NULL,
  actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'device', 'system')),
  actor_id TEXT,
  patch ${json},
  created_at ${ts},
  PRIMARY KEY (device_id, name, version)
);
CREATE INDEX twin_history_time ON twin_history (created_at);
CREATE TABLE twin_settings (
  org_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  max_section_bytes INTEGER NOT NULL,
  max_depth INTEGER NOT NULL,
  updated_at ${ts}
);
${indexes}`;
}
