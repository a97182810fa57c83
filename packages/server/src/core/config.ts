import { readFileSync } from 'node:fs';

/**
 * Every setting Fleetwire reads. The table is the single source for validation, for the
 * generated reference in docs/configuration.md and for `fleetwire config` (and `config reference`).
 * Precedence: environment variable, then the config file (FLEETWIRE_CONFIG, JSON), then default.
 */

type SettingType = 'string' | 'port' | 'listener' | 'integer' | 'boolean' | 'duration' | 'bytes' | 'enum' | 'secret';

interface SettingSpec<T> {
  env: string;
  type: SettingType;
  default: T;
  description: string;
  values?: readonly string[];
  min?: number;
  max?: number;
}

function s<T>(spec: SettingSpec<T>): SettingSpec<T> {
  return spec;
}

export const settings = {
  host: s({ env: 'FLEETWIRE_HOST', type: 'string', default: '127.0.0.1', description: 'Address every listener binds to. Use `0.0.0.0` to accept connections from other machines.' }),
  httpPort: s({ env: 'FLEETWIRE_HTTP_PORT', type: 'port', default: 8080, description: 'HTTP API port. `0` picks a free port; the chosen one is logged.' }),
  httpTlsCert: s({ env: 'FLEETWIRE_HTTP_TLS_CERT', type: 'string', default: '', description: 'PEM certificate file; with `FLEETWIRE_HTTP_TLS_KEY` the HTTP listener serves HTTPS.' }),
  httpTlsKey: s({ env: 'FLEETWIRE_HTTP_TLS_KEY', type: 'string', default: '', description: 'PEM private key file for the HTTP listener.' }),
  httpsPort: s({ env: 'FLEETWIRE_HTTPS_PORT', type: 'listener', default: 8443, description: 'HTTPS beside the plain HTTP listener, with the certificate the platform issues itself (`FLEETWIRE_TLS_AUTO`); started unless `FLEETWIRE_HTTP_TLS_CERT` makes the HTTP listener HTTPS. When it is not set and `FLEETWIRE_HTTP_PORT` is `0`, `0` too (a set-up that picks free ports gets one here as well). `off` disables it.' }),
  httpBodyLimit: s({ env: 'FLEETWIRE_HTTP_BODY_LIMIT', type: 'bytes', default: 1024 * 1024, min: 1024, description: 'Largest request body the management API accepts (e.g. `1MiB`); larger bodies get 413.' }),
  publicUrl: s({ env: 'FLEETWIRE_PUBLIC_URL', type: 'string', default: '', description: 'Base URL clients reach the HTTP API at (e.g. `https://iot.example.org`), named as the server of the OpenAPI document at `/openapi.json`. Set it behind a reverse proxy or when listening on a wildcard address. Empty: the HTTP listener, `http(s)://<FLEETWIRE_HOST>:<port>` (`localhost` for `0.0.0.0` and `::`).' }),
  trustProxy: s({ env: 'FLEETWIRE_TRUST_PROXY', type: 'boolean', default: false, description: 'Trust `X-Forwarded-For` from a reverse proxy when deciding the client address (login rate limits, logs).' }),
  dataDir: s({ env: 'FLEETWIRE_DATA_DIR', type: 'string', default: './data', description: 'Folder for the embedded database and the generated server key.' }),
  databaseUrl: s({ env: 'FLEETWIRE_DATABASE_URL', type: 'string', default: '', description: 'Empty: SQLite file `fleetwire.db` in the data folder. `sqlite:<path>` for another file, `postgres://user@host:port/db` for PostgreSQL.' }),
  databasePoolSize: s({ env: 'FLEETWIRE_DATABASE_POOL_SIZE', type: 'integer', default: 10, min: 1, max: 1000, description: 'PostgreSQL connection pool size.' }),
  secretKey: s({ env: 'FLEETWIRE_SECRET_KEY', type: 'secret', default: '', description: 'Server key (at least 32 bytes, hex or base64) used to sign access tokens and to HMAC device secrets. Empty: generated once into `<data folder>/secret.key`. Set it explicitly when several processes share one database.' }),
  adminEmail: s({ env: 'FLEETWIRE_ADMIN_EMAIL', type: 'string', default: '', description: 'With `FLEETWIRE_ADMIN_PASSWORD`: creates this platform admin at start if no user has that email.' }),
  adminPassword: s({ env: 'FLEETWIRE_ADMIN_PASSWORD', type: 'secret', default: '', description: 'Password of the first platform admin.' }),
  signup: s({ env: 'FLEETWIRE_SIGNUP', type: 'boolean', default: false, description: 'Allow anyone to create an account with `POST /auth/signup`.' }),
  passwordMinLength: s({ env: 'FLEETWIRE_PASSWORD_MIN_LENGTH', type: 'integer', default: 10, min: 8, max: 256, description: 'Shortest password accepted.' }),
  passwordHashCost: s({ env: 'FLEETWIRE_PASSWORD_HASH_COST', type: 'integer', default: 15, min: 10, max: 20, description: 'scrypt cost of new password hashes, as log2 N (r 8, p 1): `15` is N = 32768, the OWASP minimum. Each step up doubles the time and memory a login takes. Hashes already stored keep the cost they were made with. Lower it only for tests.' }),
  accessTokenTtl: s({ env: 'FLEETWIRE_ACCESS_TOKEN_TTL', type: 'duration', default: 15 * 60_000, min: 1000, description: 'Lifetime of an access token (JWT), e.g. `15m`.' }),
  refreshTokenTtl: s({ env: 'FLEETWIRE_REFRESH_TOKEN_TTL', type: 'duration', default: 30 * 86_400_000, min: 1000, description: 'Lifetime of a refresh token, e.g. `30d`. Each use replaces it with a new one.' }),
  loginMaxPerAccount: s({ env: 'FLEETWIRE_LOGIN_MAX_PER_ACCOUNT', type: 'integer', default: 5, min: 1, description: 'Failed logins allowed per account within the login window before further attempts get 429.' }),
  loginMaxPerAddress: s({ env: 'FLEETWIRE_LOGIN_MAX_PER_ADDRESS', type: 'integer', default: 30, min: 1, description: 'Login attempts allowed per client address within the login window.' }),
  loginWindow: s({ env: 'FLEETWIRE_LOGIN_WINDOW', type: 'duration', default: 15 * 60_000, min: 1000, description: 'Window of the login rate limits, e.g. `15m`.' }),
  sessionCheckCache: s({ env: 'FLEETWIRE_SESSION_CHECK_CACHE', type: 'duration', default: 1000, min: 0, max: 60_000, description: 'How long a process trusts what an API request reads about its caller before it reads the database again, e.g. `1s`: that the access token\'s session is live, the user behind it, and the user\'s role in the organization. Ending a session, changing or deleting a user and changing a membership are broadcast to every process at once; this bounds the delay if a broadcast is lost. `0` reads on every request.' }),
  authzCacheSize: s({ env: 'FLEETWIRE_AUTHZ_CACHE_SIZE', type: 'integer', default: 100_000, min: 0, description: 'Entries kept by the device authorization cache (credentials and device/channel decisions each). `0` disables it.' }),
  natsUrl: s({ env: 'FLEETWIRE_NATS_URL', type: 'string', default: '', description: 'Empty: the in-process message bus. `nats://host:4222`: NATS JetStream, so that several processes share messages and a restarted writer loses nothing.' }),
  natsStream: s({ env: 'FLEETWIRE_NATS_STREAM', type: 'string', default: 'FLEETWIRE_MESSAGES', description: 'JetStream stream holding messages (created if missing).' }),
  natsSubjectPrefix: s({ env: 'FLEETWIRE_NATS_SUBJECT_PREFIX', type: 'string', default: 'fw', description: 'First token of every NATS subject Fleetwire uses (`<prefix>.msg.…` for messages, `<prefix>.ctl.…` for control events), so that several installations can share a NATS server.' }),
  natsAckWait: s({ env: 'FLEETWIRE_NATS_ACK_WAIT', type: 'duration', default: 5000, min: 500, max: 10 * 60_000, description: 'How long JetStream waits for a durable consumer (the message writer) to acknowledge a message before it hands it to another member, e.g. `5s`: what a killed process held is stored again about this long after its death. A live process keeps what it holds with progress acknowledgements at 1/2.5 of it, every 250 ms at most often.' }),
  messageMaxSize: s({ env: 'FLEETWIRE_MESSAGE_MAX_SIZE', type: 'bytes', default: 256 * 1024, min: 1, max: 64 * 1024 * 1024, description: 'Largest message payload accepted on any protocol; larger ones are refused (HTTP 413).' }),
  storeTimeout: s({ env: 'FLEETWIRE_STORE_TIMEOUT', type: 'duration', default: 10_000, min: 100, max: 2 ** 31 - 1, description: 'How long a publish waits for its message to be stored (committed to the database, or to JetStream with NATS) before the publisher is told to try again (HTTP 503, MQTT 5 0x97, CoAP 5.03). Acknowledgements (HTTP 202, PUBACK/PUBREC, CoAP 2.04) are sent only once the message is stored.' }),
  messageMaxDepth: s({ env: 'FLEETWIRE_MESSAGE_MAX_DEPTH', type: 'integer', default: 32, min: 1, max: 1000, description: 'Deepest nesting of arrays and objects (maps, CBOR tags) in JSON, SenML JSON and SenML CBOR payloads; deeper ones are refused (HTTP 400, MQTT 5 0x99, CoAP 4.00) before they are parsed. `{"a":1}` is 1 level, a SenML pack 2.' }),
  retention: s({ env: 'FLEETWIRE_RETENTION', type: 'duration', default: 0, min: 0, description: 'How long stored messages are kept, e.g. `30d`; older ones are pruned every few minutes. `0` keeps everything.' }),
  eventRetention: s({ env: 'FLEETWIRE_EVENT_RETENTION', type: 'duration', default: 30 * 86_400_000, min: 0, description: 'How long fleet events (the audit log, docs/events.md) are kept, e.g. `90d`; older ones are pruned every few minutes. `0` keeps everything.' }),
  writerBatchSize: s({ env: 'FLEETWIRE_WRITER_BATCH_SIZE', type: 'integer', default: 2000, min: 1, max: 100_000, description: 'Messages the writer takes from the bus per database transaction at most.' }),
  writerThread: s({ env: 'FLEETWIRE_WRITER_THREAD', type: 'boolean', default: true, description: 'Run the message writer\'s database work on a worker thread with a connection of its own, so that its transactions do not hold up publishers (see docs/storage.md). `false` runs it on the main event loop. An in-memory SQLite database always has it on the main loop.' }),
  opaqueMaxStored: s({ env: 'FLEETWIRE_OPAQUE_MAX_STORED', type: 'bytes', default: 64 * 1024, min: 0, description: 'Opaque (non-SenML, non-JSON) payloads are stored up to this size; larger ones are stored truncated and flagged.' }),
  wsMaxBuffered: s({ env: 'FLEETWIRE_WS_MAX_BUFFERED', type: 'bytes', default: 4 * 1024 * 1024, min: 1024, description: 'A WebSocket subscriber with more than this much unsent data is a slow consumer and is disconnected (close code 1013).' }),
  mqttPort: s({ env: 'FLEETWIRE_MQTT_PORT', type: 'listener', default: 1883, description: 'MQTT over TCP (device credentials). `0` picks a free port; `off` disables it.' }),
  mqttsPort: s({ env: 'FLEETWIRE_MQTTS_PORT', type: 'listener', default: 8883, description: 'MQTT over TLS, with the certificate of `FLEETWIRE_MQTT_TLS_CERT` and `FLEETWIRE_MQTT_TLS_KEY` when they are set, else the one the platform issues itself (`FLEETWIRE_TLS_AUTO`). When it is not set and `FLEETWIRE_MQTT_PORT` is `0`, `0` too (a set-up that picks free ports gets one here as well). `off` disables it.' }),
  mqttTlsCert: s({ env: 'FLEETWIRE_MQTT_TLS_CERT', type: 'string', default: '', description: 'PEM certificate (chain) of the MQTT TLS listener.' }),
  mqttTlsKey: s({ env: 'FLEETWIRE_MQTT_TLS_KEY', type: 'string', default: '', description: 'PEM private key of the MQTT TLS listener.' }),
  certificateLifetime: s({ env: 'FLEETWIRE_CERTIFICATE_LIFETIME', type: 'duration', default: 90 * 86_400_000, min: 3_600_000, max: 825 * 86_400_000, description: 'Lifetime of a device certificate the platform issues at enrolment, e.g. `90d` (never past its issuing CA).' }),
  enrolmentTokenTtl: s({ env: 'FLEETWIRE_ENROLMENT_TOKEN_TTL', type: 'duration', default: 15 * 60_000, min: 60_000, max: 30 * 86_400_000, description: 'Default lifetime of a one-time enrolment token, e.g. `15m`; a token may ask for another.' }),
  enrolmentMaxPerAddress: s({ env: 'FLEETWIRE_ENROLMENT_MAX_PER_ADDRESS', type: 'integer', default: 1200, min: 1, description: 'Enrolment and renewal attempts (HTTP, EST and MQTT, successful or not) allowed per client address and minute, counted by each process; more are refused with 429 (MQTT: a rejected reply) and Retry-After. A factory line behind one address enrolling faster needs it higher.' }),
  twinHistoryRetention: s({ env: 'FLEETWIRE_TWIN_HISTORY_RETENTION', type: 'duration', default: 30 * 86_400_000, min: 0, description: 'How long the history of twin changes is kept, e.g. `30d`; older changes are pruned now and then (the twins themselves are kept). `0` keeps everything.' }),
  twinDeviceRate: s({ env: 'FLEETWIRE_TWIN_DEVICE_RATE', type: 'integer', default: 100, min: 1, max: 1_000_000, description: 'Twin updates one device may make per 10 seconds (MQTT, HTTP and CoAP together), counted by each process; more are refused (HTTP 429, MQTT a rejected reply with `twin.rate_limited`, CoAP 4.29).' }),
  tlsAuto: s({ env: 'FLEETWIRE_TLS_AUTO', type: 'boolean', default: true, description: 'The platform issues the certificate of its TLS listeners itself, signed by its root CA (what devices trust, `root_ca` in an enrolment\'s answer), for the names of `FLEETWIRE_TLS_HOSTS`; stored in the database (its key encrypted under the server key) so that every process serves the same one, and renewed before it expires. The files of `FLEETWIRE_MQTT_TLS_CERT` and `FLEETWIRE_HTTP_TLS_CERT` take its place on their listener. `false`: TLS only with those files.' }),
  tlsHosts: s({ env: 'FLEETWIRE_TLS_HOSTS', type: 'string', default: '', description: 'Comma-separated host names and IP addresses clients reach the platform by, written into the platform-issued listener certificate (its subject alternative names). Empty: `localhost`, `127.0.0.1`, `::1`, the machine\'s host name, `FLEETWIRE_HOST` unless a wildcard, and the host of `FLEETWIRE_PUBLIC_URL`. Give every process of a cluster the same list: they then serve the same certificate.' }),
  caCert: s({ env: 'FLEETWIRE_CA_CERT', type: 'string', default: '', description: 'File of the PEM certificate of an operator\'s own root CA (EC P-256), imported at first start with FLEETWIRE_CA_KEY; empty: the platform makes its root. Read once: the database keeps it, its key encrypted under the server key.' }),
  caKey: s({ env: 'FLEETWIRE_CA_KEY', type: 'string', default: '', description: 'File of the PEM private key (PKCS#8 or EC) of FLEETWIRE_CA_CERT.' }),
  mqttTlsCa: s({ env: 'FLEETWIRE_MQTT_TLS_CA', type: 'string', default: '', description: 'PEM CA bundle: when set, the TLS listener asks for client certificates signed by it, and a device may authenticate with one whose CN is its id (username and password then optional).' }),
  mqttOpenPort: s({ env: 'FLEETWIRE_MQTT_OPEN_PORT', type: 'listener', default: -1, description: 'Development/conformance listener: anonymous clients, any topic, governed by `FLEETWIRE_MQTT_OPEN_ACL_FILE`. Off by default; never expose it.' }),
  mqttOpenAclFile: s({ env: 'FLEETWIRE_MQTT_OPEN_ACL_FILE', type: 'string', default: '', description: 'ACL of the open listener: one rule per line, `allow|deny publish|subscribe|all <topic filter>`; the first rule that applies decides, none: denied. Empty: everything allowed.' }),
  mqttMaxKeepalive: s({ env: 'FLEETWIRE_MQTT_MAX_KEEPALIVE', type: 'integer', default: 0, min: 0, max: 65535, description: 'Longest keep-alive (seconds) a client may use on every MQTT listener; longer or 0 requests get this value (told to MQTT 5 clients as Server Keep Alive). `0`: no maximum.' }),
  mqttMaxConnections: s({ env: 'FLEETWIRE_MQTT_MAX_CONNECTIONS', type: 'integer', default: 0, min: 0, description: 'MQTT connections that completed their CONNECT, at most; more are refused (CONNACK server busy, logged at most every 10 s). 0: as many as the open-files limit (`ulimit -n`) allows once a fifth of it (256 to 10,000) is kept for HTTP, the database and NATS, and `FLEETWIRE_MQTT_MAX_UNAUTHENTICATED` for connections waiting for their CONNECT (100,000 where the limit cannot be read). A value above what the limit allows is lowered to it, with a warning. Logged at start.' }),
  mqttMaxPublishRate: s({ env: 'FLEETWIRE_MQTT_MAX_PUBLISH_RATE', type: 'integer', default: 0, min: 0, description: 'PUBLISH packets per second one client may send (bursts of twice that); above it the client is disconnected (0x96). `0`: unlimited.' }),
  mqttMaxConnectRate: s({ env: 'FLEETWIRE_MQTT_MAX_CONNECT_RATE', type: 'integer', default: 200, min: 0, description: 'New MQTT connections per second from one IP address (bursts of twice that); more are closed before CONNECT is read (connect-flood protection). `0`: unlimited.' }),
  mqttMaxQueued: s({ env: 'FLEETWIRE_MQTT_MAX_QUEUED', type: 'integer', default: 1000, min: 1, description: 'QoS 1/2 messages queued per session while its client is offline or busy; beyond that the oldest are dropped (counted in fleetwire_mqtt_messages_dropped_total).' }),
  mqttConnectTimeout: s({ env: 'FLEETWIRE_MQTT_CONNECT_TIMEOUT', type: 'duration', default: 10_000, min: 100, max: 2 ** 31 - 1, description: 'An MQTT connection that has not completed its CONNECT (CONNACK sent) this long after it opened is closed, e.g. `10s`.' }),
  mqttMaxPreauthPacketSize: s({ env: 'FLEETWIRE_MQTT_MAX_PREAUTH_PACKET_SIZE', type: 'bytes', default: 64 * 1024, min: 1024, max: 64 * 1024 * 1024, description: 'Largest packet accepted before a connection has sent its CONNECT: the CONNECT itself, with its will message and password. A larger one closes the connection as soon as its header says so (MQTT 5: CONNACK 0x95 first).' }),
  mqttMaxUnauthenticated: s({ env: 'FLEETWIRE_MQTT_MAX_UNAUTHENTICATED', type: 'integer', default: 1000, min: 1, description: 'MQTT connections waiting for their CONNECT to be accepted at once: on the device listeners (TCP, TLS, WebSocket) together, and on the open listener apart. They do not count in `FLEETWIRE_MQTT_MAX_CONNECTIONS`; one more closes the oldest of them.' }),
  mqttMaxSubscriptions: s({ env: 'FLEETWIRE_MQTT_MAX_SUBSCRIPTIONS', type: 'integer', default: 100, min: 1, description: 'Distinct topic filters (shared subscriptions included) one MQTT session may hold; more are refused with SUBACK 0x97 (MQTT 3.1.1: 0x80).' }),
  nodeId: s({ env: 'FLEETWIRE_NODE_ID', type: 'string', default: '', description: "This process's name among several sharing one database and NATS (which holds which MQTT session). Empty: the host name. Give each process on one host its own." }),
  presenceRetention: s({ env: 'FLEETWIRE_PRESENCE_RETENTION', type: 'duration', default: 30 * 86_400_000, min: 0, description: 'How long the history of presence changes (online, idle, offline) is kept, e.g. `30d`; older changes are pruned every few minutes. `0` keeps everything. See docs/presence.md.' }),
  presenceNodeTimeout: s({ env: 'FLEETWIRE_PRESENCE_NODE_TIMEOUT', type: 'duration', default: 30_000, min: 1000, max: 2 ** 31 - 1, description: 'Every process writes a heartbeat a third of this often; one silent this long is taken as dead by the others, which mark the devices it had connected `offline` (reason `connection_lost`), e.g. `30s`.' }),
  presenceFlushInterval: s({ env: 'FLEETWIRE_PRESENCE_FLUSH_INTERVAL', type: 'duration', default: 1000, min: 10, max: 60_000, description: 'How often presence changes (connects, disconnects, devices seen) are written, in one transaction each time, e.g. `1s`: a reconnecting fleet costs a few transactions, not one per device.' }),
  presenceDefaultInterval: s({ env: 'FLEETWIRE_PRESENCE_DEFAULT_INTERVAL', type: 'duration', default: 10 * 60_000, min: 1000, max: 7 * 86_400_000, description: 'The expected reporting interval of a device seen over HTTP, WebSocket or CoAP that never declared one (`POST /devices/{id}/presence`): it is `idle` until 1.5 × this passes without a message or heartbeat, then `offline`.' }),
  coapPort: s({ env: 'FLEETWIRE_COAP_PORT', type: 'listener', default: 5683, description: 'CoAP over UDP (device secret in `?auth=`; see docs/coap.md). `0` picks a free port; `off` disables it.' }),
  coapMaxObserversPerAddress: s({ env: 'FLEETWIRE_COAP_MAX_OBSERVERS_PER_ADDRESS', type: 'integer', default: 64, min: 1, max: 100_000, description: 'Observations (CoAP subscriptions) one source IP address may hold at once; more are refused with 5.03.' }),
  coapMaxTransfersPerAddress: s({ env: 'FLEETWIRE_COAP_MAX_TRANSFERS_PER_ADDRESS', type: 'integer', default: 8, min: 1, max: 10_000, description: 'Block-wise uploads (RFC 7959) one source IP address may have in progress at once; more are refused with 5.03.' }),
  coapConfirmInterval: s({ env: 'FLEETWIRE_COAP_CONFIRM_INTERVAL', type: 'duration', default: 60_000, min: 1000, max: 2 ** 31 - 1, description: 'An observer that has not acknowledged a confirmable message for this long gets one: the next notification, or an empty ping when the channel is quiet. No answer after the RFC 7252 retransmissions frees the observation.' }),
  logLevel: s({ env: 'FLEETWIRE_LOG_LEVEL', type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', description: 'Log level of the JSON logs on standard output.' }),
  // max: the longest setTimeout (about 24.8 days); a longer timer would fire at once
  shutdownTimeout: s({ env: 'FLEETWIRE_SHUTDOWN_TIMEOUT', type: 'duration', default: 10_000, min: 0, max: 2 ** 31 - 1, description: 'How long a graceful shutdown waits for open requests before closing anyway.' }),
};

export type SettingKey = keyof typeof settings;
export type Config = { [K in SettingKey]: (typeof settings)[K]['default'] };

export class ConfigError extends Error {
  constructor(readonly setting: string, message: string) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * The text of an error for a one-line message: its message, or those of the errors it gathers (a
 * connection to `localhost` tries IPv6 and IPv4 and may fail with an AggregateError of both).
 */
export function causeText(e: unknown): string {
  if (e instanceof AggregateError && !e.message) return e.errors.map(causeText).join('; ');
  if (e instanceof Error) return e.message || (e as NodeJS.ErrnoException).code || e.name;
  return String(e);
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const byteUnits: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

/** `500ms`, `30s`, `15m`, `2h`, `30d`; a bare number is milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * durationUnits[m[2] ?? 'ms']!);
}

/** `512`, `64KiB`, `1MiB`, `1MB`. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = byteUnits[(m[2] || 'b').toLowerCase()];
  return unit === undefined ? undefined : Number(m[1]) * unit;
}

function parseValue(spec: SettingSpec<unknown>, raw: unknown): unknown {
  const text = typeof raw === 'string' ? raw.trim() : raw;
  const fail = (why: string): never => {
    throw new ConfigError(spec.env, why);
  };
  switch (spec.type) {
    case 'string':
    case 'secret':
      if (typeof text !== 'string') fail('expected a string');
      return text;
    case 'boolean':
      if (typeof text === 'boolean') return text;
      if (text === 'true' || text === '1' || text === 'yes') return true;
      if (text === 'false' || text === '0' || text === 'no' || text === '') return false;
      return fail(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'listener':
      // a port, or `off` (-1) for a listener that is not started
      if (text === 'off' || text === -1) return -1;
      return parseValue({ ...spec, type: 'port' }, raw);
    case 'port':
    case 'integer': {
      const n = typeof text === 'number' ? text : /^-?\d+$/.test(String(text)) ? Number(text) : NaN;
      if (!Number.isInteger(n)) fail(`expected an integer, got ${JSON.stringify(raw)}`);
      const [min, max] = spec.type === 'port' ? [0, 65535] : [spec.min ?? -Infinity, spec.max ?? Infinity];
      if (n < min || n > max) fail(`must be between ${min} and ${max}, got ${n}`);
      return n;
    }
    case 'duration': {
      const n = typeof text === 'number' ? text : parseDuration(String(text));
      if (n === undefined || !Number.isFinite(n)) fail(`expected a duration like 30s, 15m or 30d, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n! < spec.min) fail(`must be at least ${spec.min} ms`);
      if (spec.max !== undefined && n! > spec.max) fail(`must be at most ${spec.max} ms`);
      return n;
    }
    case 'bytes': {
      const n = typeof text === 'number' ? text : parseBytes(String(text));
      if (n === undefined) fail(`expected a size like 512KiB or 1MiB, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n! < spec.min) fail(`must be at least ${spec.min} bytes`);
      if (spec.max !== undefined && n! > spec.max) fail(`must be at most ${spec.max} bytes`);
      return n;
    }
    case 'enum':
      if (typeof text !== 'string' || !spec.values!.includes(text)) fail(`expected one of ${spec.values!.join(', ')}, got ${JSON.stringify(raw)}`);
      return text;
  }
}

/** The config file key of a setting: the env name without prefix, lower case (`http_port`). */
export function fileKey(spec: SettingSpec<unknown>): string {
  return spec.env.replace(/^FLEETWIRE_/, '').toLowerCase();
}

/** The JSON config file named by FLEETWIRE_CONFIG: an object of settings by file key. */
function readConfigFile(path: string): Record<string, unknown> {
  let file: unknown;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('FLEETWIRE_CONFIG', `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    file = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('FLEETWIRE_CONFIG', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new ConfigError('FLEETWIRE_CONFIG', `${path} must hold a JSON object`);
  return file as Record<string, unknown>;
}

/**
 * Reads every setting from `env` (and the JSON file named by FLEETWIRE_CONFIG), validating each;
 * the first bad one throws a ConfigError that names it. Unknown FLEETWIRE_* variables are rejected
 * too, so that a typo does not silently fall back to a default.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  return readSettings(env, overrides).config;
}

/** Where a setting's value came from (`override`: handed in by the caller, e.g. a test). */
export type SettingSource = 'environment' | 'file' | 'default' | 'override';

function readSettings(env: NodeJS.ProcessEnv, overrides: Partial<Config>): { config: Config; sources: Record<SettingKey, SettingSource> } {
  const path = env.FLEETWIRE_CONFIG;
  const file = path ? readConfigFile(path) : {};
  const specs = Object.values(settings) as SettingSpec<unknown>[];
  const knownEnv = new Set(specs.map((x) => x.env).concat(['FLEETWIRE_CONFIG', ...extraEnvNames]));
  for (const name of Object.keys(env)) {
    const removed = removedSettings[name];
    if (removed !== undefined) throw new ConfigError(name, `no longer a setting: ${removed}`);
    if (name.startsWith('FLEETWIRE_') && !knownEnv.has(name) && !toolPrefixes.some((p) => name.startsWith(p))) throw new ConfigError(name, 'unknown setting (see docs/configuration.md)');
  }
  const knownFile = new Set(specs.map(fileKey));
  for (const key of Object.keys(file)) {
    const removed = removedSettings[`FLEETWIRE_${key.toUpperCase()}`];
    if (removed !== undefined) throw new ConfigError(`${key} (in ${path})`, `no longer a setting: ${removed}`);
    if (!knownFile.has(key)) throw new ConfigError(`${key} (in ${path})`, 'unknown setting (see docs/configuration.md)');
  }
  const out: Record<string, unknown> = {};
  const sources = {} as Record<SettingKey, SettingSource>;
  for (const [key, spec] of Object.entries(settings) as [SettingKey, SettingSpec<unknown>][]) {
    if (key in overrides) {
      out[key] = overrides[key];
      sources[key] = 'override';
      continue;
    }
    const raw = env[spec.env] ?? file[fileKey(spec)];
    sources[key] = env[spec.env] !== undefined ? 'environment' : raw !== undefined ? 'file' : 'default';
    out[key] = raw === undefined ? spec.default : parseValue(spec, raw);
  }
  const cfg = out as Config;
  // a set-up that asks for free ports (tests, several processes on one machine) gets free TLS ports too
  if (sources.mqttsPort === 'default' && cfg.mqttPort === 0) cfg.mqttsPort = 0;
  if (sources.httpsPort === 'default' && cfg.httpPort === 0) cfg.httpsPort = 0;
  if (Boolean(cfg.mqttTlsCert) !== Boolean(cfg.mqttTlsKey)) throw new ConfigError('FLEETWIRE_MQTT_TLS_KEY', 'FLEETWIRE_MQTT_TLS_CERT and FLEETWIRE_MQTT_TLS_KEY go together');
  if (Boolean(cfg.caCert) !== Boolean(cfg.caKey)) throw new ConfigError(cfg.caCert ? 'FLEETWIRE_CA_KEY' : 'FLEETWIRE_CA_CERT', 'an imported root needs both its certificate (FLEETWIRE_CA_CERT) and its key (FLEETWIRE_CA_KEY)');
  if (cfg.mqttTlsCa && !cfg.mqttTlsCert && !cfg.tlsAuto) throw new ConfigError('FLEETWIRE_MQTT_TLS_CA', 'client certificates need the TLS listener: set FLEETWIRE_MQTT_TLS_CERT and FLEETWIRE_MQTT_TLS_KEY, or leave FLEETWIRE_TLS_AUTO on');
  if (cfg.tlsHosts) parseTlsHosts(cfg.tlsHosts);
  if (Boolean(cfg.httpTlsCert) !== Boolean(cfg.httpTlsKey)) throw new ConfigError('FLEETWIRE_HTTP_TLS_KEY', 'FLEETWIRE_HTTP_TLS_CERT and FLEETWIRE_HTTP_TLS_KEY go together');
  if (cfg.databaseUrl && !/^(sqlite:|postgres(ql)?:\/\/)/.test(cfg.databaseUrl)) throw new ConfigError('FLEETWIRE_DATABASE_URL', 'must start with sqlite: or postgres://');
  if (cfg.publicUrl && !isBaseUrl(cfg.publicUrl)) throw new ConfigError('FLEETWIRE_PUBLIC_URL', `must be an http:// or https:// URL without query or fragment, got ${JSON.stringify(cfg.publicUrl)}`);
  if (Boolean(cfg.adminEmail) !== Boolean(cfg.adminPassword)) throw new ConfigError('FLEETWIRE_ADMIN_PASSWORD', 'FLEETWIRE_ADMIN_EMAIL and FLEETWIRE_ADMIN_PASSWORD go together');
  return { config: cfg, sources };
}

/**
 * FLEETWIRE_TLS_HOSTS as the names of a certificate: DNS names (lower case; a leading `*.` is a
 * wildcard) and IP addresses, each once, in the order given. Throws a ConfigError on anything else.
 */
export function parseTlsHosts(text: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const raw of text.split(',')) {
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (!host) continue;
    if (isIpAddress(host)) {
      if (!ipAddresses.includes(host)) ipAddresses.push(host);
    } else if (/^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(host) && host.length <= 253) {
      const name = host.replace(/\.$/, '');
      if (!dnsNames.includes(name)) dnsNames.push(name);
    } else {
      throw new ConfigError('FLEETWIRE_TLS_HOSTS', `${JSON.stringify(raw.trim())} is neither a host name nor an IP address`);
    }
  }
  if (dnsNames.length + ipAddresses.length === 0) throw new ConfigError('FLEETWIRE_TLS_HOSTS', 'names no host: give host names or IP addresses, separated by commas');
  return { dnsNames, ipAddresses };
}

/** An IPv4 or IPv6 address as written (not a name), what a certificate's iPAddress holds; no node:net in core (test/layout.test.ts). */
function isIpAddress(host: string): boolean {
  const octet = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
  return new RegExp(`^${octet}(\\.${octet}){3}$`).test(host) || (host.includes(':') && URL.canParse(`http://[${host}]/`));
}

/** An absolute http(s) URL that can prefix API paths: no query, no fragment, no credentials. */
function isBaseUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const u = new URL(text);
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '' && u.username === '' && u.password === '' && !text.includes('#') && !text.includes('?');
}

/** Prefixes of variables read by tools around the server (tests, benchmarks), never by the server. */
/** Settings that were, and what took their place: named so that an upgrade says what to do instead. */
const removedSettings: Partial<Record<string, string>> = {
  FLEETWIRE_MQTT_CONTENT_TYPE: "each channel has its own content_type for payloads that come without one (docs/http.md, 'Channel content type')",
};

const toolPrefixes = ['FLEETWIRE_TEST_', 'FLEETWIRE_BENCH_', 'FLEETWIRE_FUZZ_'];

/** Variables read by tools around the server (tests, CI, the client commands of the CLI), not by the server itself. */
const extraEnvNames = ['FLEETWIRE_URL', 'FLEETWIRE_TOKEN', 'FLEETWIRE_TEST_DATABASE', 'FLEETWIRE_TEST_POSTGRES_URL', 'FLEETWIRE_TEST_NATS_URL', 'FLEETWIRE_REQUIRE_SERVICES'];

/** The largest unit that divides evenly: 900000 → `15m`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(durationUnits).reverse()) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) if (n % size === 0) return `${n / size}${unit}`;
  return `${n}B`;
}

/** A value as an operator writes it: `15m`, `1MiB`, `off`. */
function formatValue(spec: SettingSpec<unknown>, value: unknown): string {
  if (spec.type === 'listener' && value === -1) return 'off';
  if (spec.type === 'duration') return formatDuration(value as number);
  if (spec.type === 'bytes') return formatBytes(value as number);
  return String(value);
}

/** Settings whose value is a URL that may carry a password or token. */
const urlSettings: ReadonlySet<string> = new Set<SettingKey>(['databaseUrl', 'natsUrl']);

/**
 * A URL with its credentials replaced by `***`: the password (`postgres://fw:***@db/fleetwire`),
 * a `password` query parameter, or a NATS token given as the user name (`nats://***@nats:4222`).
 */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@'); // not a URL: hide anything that looks like user info
  }
  let masked = false;
  if (u.password) {
    u.password = '***';
    masked = true;
  } else if (u.username && u.protocol.startsWith('nats')) {
    u.username = '***';
    masked = true;
  }
  if (u.searchParams.has('password')) {
    u.searchParams.set('password', '***');
    masked = true;
  }
  return masked ? u.toString() : url;
}

/** One setting as `fleetwire config` shows it: secrets masked. */
export interface EffectiveSetting {
  env: string;
  fileKey: string;
  value: string;
  source: SettingSource;
}

/**
 * Every setting's effective value, read as `loadConfig` reads them (throwing the same ConfigError
 * on a bad one), with where it came from. Secrets show as `***` when set, and URLs without their
 * passwords: the output is safe to paste into a bug report.
 */
export function effectiveSettings(env: NodeJS.ProcessEnv = process.env): EffectiveSetting[] {
  const { config, sources } = readSettings(env, {});
  return (Object.entries(settings) as [SettingKey, SettingSpec<unknown>][]).map(([key, spec]) => {
    const value = config[key];
    const shown = spec.type === 'secret' ? (value === '' ? '' : '***') : urlSettings.has(key) ? maskUrl(value as string) : formatValue(spec, value);
    return { env: spec.env, fileKey: fileKey(spec), value: shown, source: sources[key] };
  });
}

/** Markdown table of every setting, for docs/configuration.md. */
export function configReference(): string {
  const rows = (Object.values(settings) as SettingSpec<unknown>[]).map((spec) => {
    const def = spec.default === '' ? '(empty)' : formatValue(spec, spec.default);
    const type = spec.type === 'enum' ? spec.values!.join(' \\| ') : spec.type;
    return `| \`${spec.env}\` | \`${fileKey(spec)}\` | ${type} | \`${def}\` | ${spec.description} |`;
  });
  return ['| Variable | Config file key | Type | Default | Meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
