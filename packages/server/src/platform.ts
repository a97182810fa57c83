import { readFileSync } from 'node:fs';
import { ConfigError, causeText, maskUrl, type Config } from './core/config.js';
import type { Clock } from './core/clock.js';
import type { Logger } from './core/logger.js';
import { Database, migrate, sqliteUrlFor } from './db/index.js';
import { ServerKeys, loadServerKey } from './auth/keys.js';
import { TokenRepository } from './auth/repository.js';
import { AuthService } from './auth/service.js';
import { LoginLimiter, MemoryAddressLimiter } from './auth/rate-limit.js';
import { DeviceAuthorizer } from './auth/decision.js';
import { createAccessStore } from './auth/access-store.js';
import { broadcastInvalidation, type AccessChanges } from './auth/invalidation.js';
import { SessionRegistry } from './auth/sessions.js';
import { PrincipalCache } from './auth/principals.js';
import type { OrgRole } from './auth/permissions.js';
import type { User } from './users/repository.js';
import { UserRepository, UserService } from './users/index.js';
import { OrgRepository, OrgService } from './orgs/index.js';
import { DeviceRepository, DeviceService } from './devices/index.js';
import { IdentityService, IdentityStore, trustTopic } from './identity/index.js';
import { IdentityMetrics } from './identity/metrics.js';
import { DeviceTrustCache } from './identity/trust.js';
import { ChannelRepository, ChannelService } from './channels/index.js';
import { GroupRepository, GroupService } from './groups/index.js';
import { ConnectionRepository, ConnectionService } from './connections/index.js';
import { Registry } from 'prom-client';
import type { Bus } from './messaging/bus.js';
import { MemoryBus } from './messaging/memory-bus.js';
import { NatsBus } from './messaging/nats-bus.js';
import { MessagingMetrics } from './messaging/metrics.js';
import { MessagingService } from './messaging/service.js';
import { Consumers } from './messaging/consumers.js';
import { MessageWriter, localStore, writerConsumer, type BatchStore } from './storage/writer.js';
import { WriterThread } from './storage/writer-thread.js';
import { createMessageSink } from './storage/sink.js';
import { MessageReaders } from './storage/readers.js';
import { DeadLetterRepository } from './storage/dead-letters.js';
import { TwinService, TwinStore } from './twins/index.js';
import { EventLog, EventStore } from './events/index.js';
import { hostname } from 'node:os';
import { PresenceRepository, PresenceService } from './presence/index.js';

/** Every domain service, wired over one database. Transports receive this and nothing else. */
export interface Platform {
  config: Config;
  db: Database;
  clock: Clock;
  log: Logger;
  keys: ServerKeys;
  users: UserService;
  auth: AuthService;
  orgs: OrgService;
  devices: DeviceService;
  identity: IdentityService;
  /** The CAs the TLS listeners trust for device certificates (identity/trust.ts). */
  trust: DeviceTrustCache;
  channels: ChannelService;
  groups: GroupService;
  connections: ConnectionService;
  /** Device twins (src/twins/). */
  twins: TwinService;
  /** The device authorization decision every transport calls. */
  authorizer: DeviceAuthorizer;
  /** Access changes (disable, delete, secret rotation, connections, channel or organization deleted) from every process: transports end the sessions no longer allowed. */
  accessChanges: AccessChanges;
  /** Login sessions, and word of those that end (logout, password change, sign-out everywhere) from every process. */
  sessions: SessionRegistry;
  bus: Bus;
  messaging: MessagingService;
  /** The durable bus consumers, started and stopped together (the consumer seam). */
  consumers: Consumers;
  readers: MessageReaders;
  writer: MessageWriter;
  /** Messages the writer could not store (migration 5). */
  deadLetters: DeadLetterRepository;
  /** The fleet event stream and audit log of every organization (src/events/). */
  events: EventLog;
  /** Who is online, idle or offline (presence/); transports report connections and activity to it. */
  presence: PresenceService;
  /** Prometheus registry every part registers its metrics in. */
  metrics: Registry;
  messagingMetrics: MessagingMetrics;
  /** Stops the writer and closes the bus and the database (those it opened itself). */
  close(): Promise<void>;
}

export interface PlatformDeps {
  clock: Clock;
  log: Logger;
  /** An open database (tests); otherwise one is opened from the config. */
  db?: Database;
  /** The server key (tests); otherwise from config or the data folder. */
  key?: Buffer;
  /** A bus (tests); otherwise in-process, or NATS when FLEETWIRE_NATS_URL is set. */
  bus?: Bus;
  /** Start the message writer (default true). */
  writer?: boolean;
}

/** Where the writer stores: on a worker thread when configured and the database is one another connection can open (a file or PostgreSQL). */
async function storeFor(config: Config, url: string, ownDatabase: boolean, db: Database, log: Logger, writing: boolean): Promise<BatchStore> {
  // no thread for a platform that does not write (a one-off command such as `admin create`)
  if (!writing) return localStore(createMessageSink(db), config.opaqueMaxStored);
  if (config.writerThread && ownDatabase && url !== 'sqlite::memory:') {
    const thread = new WriterThread({ url, opaqueMaxBytes: config.opaqueMaxStored });
    await thread.start();
    log.info('message writer runs on a worker thread');
    return thread;
  }
  log.info(config.writerThread ? 'message writer runs on the main thread: its database is in memory or was handed in' : 'message writer runs on the main thread');
  return localStore(createMessageSink(db), config.opaqueMaxStored);
}

/** A PEM file a setting names; one that cannot be read fails start-up with a line naming the setting. */
function readPem(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(setting, `cannot read ${path}: ${causeText(e)}`);
  }
}

/** The configured database; one that cannot be opened or reached fails start-up with a line naming the setting. */
export async function openDatabase(config: Config, options: { poolSize?: number } = {}): Promise<Database> {
  const url = config.databaseUrl || sqliteUrlFor(config.dataDir);
  try {
    return await Database.open({ url, poolSize: options.poolSize ?? config.databasePoolSize });
  } catch (e) {
    if (config.databaseUrl) throw new ConfigError('FLEETWIRE_DATABASE_URL', `cannot connect to the database at ${maskUrl(url)}: ${causeText(e)}`);
    throw new ConfigError('FLEETWIRE_DATA_DIR', `cannot open the database ${url.slice('sqlite:'.length)}: ${causeText(e)}`);
  }
}

async function connectNats(config: Config, durable: string[]): Promise<NatsBus> {
  try {
    return await NatsBus.connect({ url: config.natsUrl, stream: config.natsStream, subjectPrefix: `${config.natsSubjectPrefix}.msg`, controlPrefix: `${config.natsSubjectPrefix}.ctl`, durable, ackWaitMs: config.natsAckWait });
  } catch (e) {
    throw new ConfigError('FLEETWIRE_NATS_URL', `cannot connect to NATS at ${maskUrl(config.natsUrl)}: ${causeText(e)}`);
  }
}

export async function createPlatform(config: Config, deps: PlatformDeps): Promise<Platform> {
  const { clock, log } = deps;
  const url = config.databaseUrl || sqliteUrlFor(config.dataDir);
  const db = deps.db ?? (await openDatabase(config));
  // the writer's thread, once started: a start-up that fails after it stops it again
  let writerStore: BatchStore | undefined;
  try {
    const report = await migrate(db);
    for (const m of report.applied) log.info({ version: m.version, name: m.name }, 'applied migration');
    let key = deps.key;
    if (!key) {
      const loaded = loadServerKey(config.secretKey, config.dataDir);
      if (loaded.source === 'generated') log.warn({ dataDir: config.dataDir }, 'generated a new server key in the data folder; set FLEETWIRE_SECRET_KEY when several processes share a database');
      key = loaded.key;
    }
    const keys = new ServerKeys(key);
    const authorizer = new DeviceAuthorizer(createAccessStore(db), keys, config.authzCacheSize);
    // every durable consumer is declared before the bus is made: the bus keeps messages for each
    const consumers = new Consumers().declare(writerConsumer);
    const durable = [...consumers.names];
    const bus = deps.bus ?? (config.natsUrl ? await connectNats(config, durable) : new MemoryBus({ durable }));
    if (!deps.bus) log.info({ bus: bus.kind }, 'message bus ready');
    const invalidation = broadcastInvalidation(authorizer, bus);
    const tokenRepo = new TokenRepository(db);
    const userRepo = new UserRepository(db);
    const limiter = new LoginLimiter(db, { maxPerAccount: config.loginMaxPerAccount, maxPerAddress: config.loginMaxPerAddress, windowMs: config.loginWindow }, clock);
    const sessions = new SessionRegistry(db, bus, clock, config.sessionCheckCache);
    // the user and role each API request reads, kept as briefly as the session check (auth/principals.ts)
    const principals = new PrincipalCache<User, OrgRole>(bus, clock, config.sessionCheckCache);
    const auth = new AuthService(userRepo, tokenRepo, sessions, keys, limiter, clock, { accessTokenTtlMs: config.accessTokenTtl, refreshTokenTtlMs: config.refreshTokenTtl, passwordCost: config.passwordHashCost }, principals);
    const users = new UserService(userRepo, clock, { passwordMinLength: config.passwordMinLength, passwordCost: config.passwordHashCost, onPasswordChanged: (id) => auth.revokeSessions(id), onChanged: (id) => principals.userChanged(id) });
    const orgs = new OrgService(new OrgRepository(db), users, clock, () => invalidation.invalidateAll(), principals);
    const devices = new DeviceService(new DeviceRepository(db), keys, clock, invalidation);
    const channels = new ChannelService(new ChannelRepository(db), clock, invalidation);
    const groups = new GroupService(new GroupRepository(db), devices, clock);
    const connections = new ConnectionService(new ConnectionRepository(db), devices, channels, clock, invalidation);
    const metrics = new Registry();
    writerStore = await storeFor(config, url, deps.db === undefined, db, log, deps.writer !== false);
    // on SQLite the writer's thread also takes the twins' and the events' writes (db/offload.ts)
    const offload = db.sqlite && writerStore instanceof WriterThread ? writerStore : undefined;
    const twinStore = new TwinStore(db, offload);
    // twin changes go to the other processes through the bus; an in-process bus has none to tell
    const twins = new TwinService(twinStore, devices, clock, log, { historyRetentionMs: config.twinHistoryRetention, maxDeviceUpdates: config.twinDeviceRate, rateWindowMs: 10_000 }, new MemoryAddressLimiter({ maxPerAddress: config.twinDeviceRate, windowMs: 10_000 }, clock), bus.kind === 'nats' ? bus : undefined);
    const identityStore = new IdentityStore(db);
    const identity = new IdentityService(identityStore, keys, channels, groups, clock, log, {
      certificateDays: Math.max(1, Math.round(config.certificateLifetime / 86_400_000)),
      tokenTtlMs: config.enrolmentTokenTtl,
      ...(config.caCert ? { rootCertificatePem: readPem(config.caCert, 'FLEETWIRE_CA_CERT'), rootKeyPem: readPem(config.caKey, 'FLEETWIRE_CA_KEY') } : {}),
    }, invalidation, new MemoryAddressLimiter({ maxPerAddress: config.enrolmentMaxPerAddress, windowMs: 60_000 }, clock), new IdentityMetrics(metrics, identityStore, clock));
    // every node's MQTT TLS listener trusts an issuing CA once it is made (mqtt/index.ts)
    identity.onTrustChange(() => bus.broadcast(trustTopic, ''));
    // a renewed certificate's first use revokes the one it replaces
    authorizer.onCertificateSeen = (deviceId, serial) => void identity.certificateUsed(deviceId, serial).catch((e: unknown) => log.error({ err: e, deviceId, serial }, 'could not retire the certificate a renewed one replaces'));
    await identity.root();
    const events = new EventLog(new EventStore(db, offload), bus, clock, log, {
      batchSize: 500,
      // on the writer's thread, a device's twin or message write waits for one of these at most
      ...(offload ? { transactionSize: 100 } : {}),
      flushIntervalMs: 100,
      retentionMs: config.eventRetention,
      pruneIntervalMs: Math.min(5 * 60_000, Math.max(1000, config.eventRetention / 10)),
      maxBuffered: 100_000,
    });
    identity.events = events;
    // each twin change makes a fleet event: twin writes wait while many events wait to be written
    twinStore.gate = () => events.below(2000);
    // every accepted twin change is a fact of the fleet: who changed which twin, what is left to do
    twins.onChange((c) => {
      const subject = { kind: 'device', id: c.deviceId };
      events.record({ orgId: c.orgId, type: 'twin.updated', actor: c.actor, subject, data: { twin: c.name, version: c.version, patch: c.patch } });
      if (c.desiredChanged && Object.keys(c.delta).length > 0) events.record({ orgId: c.orgId, type: 'twin.delta', actor: c.actor, subject, data: { twin: c.name, version: c.version, delta: c.delta } });
      if (c.rejectedNow.length > 0) events.record({ orgId: c.orgId, type: 'twin.rejected', actor: c.actor, subject, data: { twin: c.name, version: c.version, rejected: Object.fromEntries(c.rejectedNow.map((p) => [p, c.twin.rejected[p]!.reason])) } });
    });
    const trust = new DeviceTrustCache(identity, bus, log);
    await trust.load();
    const messagingMetrics = new MessagingMetrics(metrics, bus);
    // the writer reuses the service's parse only when it gets the very envelope object: same thread, in-process bus
    const rememberParse = bus.kind === 'memory' && !(writerStore instanceof WriterThread);
    const deadLetters = new DeadLetterRepository(db);
    const writer = new MessageWriter(bus, writerStore, clock, log, messagingMetrics, {
      batchSize: config.writerBatchSize,
      retentionMs: config.retention,
      pruneIntervalMs: Math.min(5 * 60_000, Math.max(1000, config.retention / 10)),
    }, deadLetters);
    // while the writer cannot store, new messages are refused (503, MQTT 5 0x97, 5.03) rather than acknowledged for nothing
    const refuse = () => {
      const health = writer.health();
      return health.ok ? undefined : health.reason;
    };
    const presence = new PresenceService(new PresenceRepository(db), clock, log.child({ component: 'presence' }), {
      nodeId: config.nodeId || hostname(),
      flushIntervalMs: config.presenceFlushInterval,
      nodeTimeoutMs: config.presenceNodeTimeout,
      defaultIntervalMs: config.presenceDefaultInterval,
      retentionMs: config.presenceRetention,
    });
    // a device coming and going is a fact of the fleet (recorded once, by the node that stored the change)
    presence.onChange((c) => {
      const came = c.previous === 'offline' && c.state !== 'offline';
      if (!came && c.state !== 'offline') return; // online ⇄ idle: still there
      events.record({
        orgId: c.orgId, type: came ? 'device.connected' : 'device.disconnected', actor: { kind: came ? 'device' : 'system', ...(came ? { id: c.deviceId } : {}) }, subject: { kind: 'device', id: c.deviceId },
        data: { state: c.state, previous: c.previous, ...(c.reason ? { reason: c.reason } : {}), ...(c.protocol ? { protocol: c.protocol } : {}), ...(c.node ? { node: c.node } : {}) },
      });
    });
    const deviceSeen = (deviceId: string, orgId: string, protocol: string) => presence.seen(deviceId, orgId, protocol);
    const messaging = new MessagingService(authorizer, orgs, channels, bus, clock, { maxPayloadBytes: config.messageMaxSize, maxPayloadDepth: config.messageMaxDepth, rememberParse, refuse, storeTimeoutMs: config.storeTimeout, deviceSeen });
    consumers.attach(writerConsumer, writer);
    if (deps.writer !== false) {
      await consumers.start();
      twins.start();
      // a one-off command (no writer) is no node: it would take the running server's connections as its own leftovers
      await presence.start();
    }
    return {
      config, db, clock, log, keys, users, auth, orgs, devices, channels, groups, connections, twins, identity, trust, authorizer, accessChanges: invalidation, sessions,
      bus, messaging, consumers, readers: new MessageReaders(db), writer, deadLetters, events, presence, metrics, messagingMetrics,
      close: async () => {
        await presence.close();
        twins.stop();
        // before the writer's thread stops: it writes the events on SQLite
        await events.close();
        await consumers.stop();
        invalidation.stop();
        trust.stop();
        sessions.stop();
        principals.stop();
        if (!deps.bus) await bus.close();
        if (!deps.db) await db.close();
      },
    };
  } catch (e) {
    await writerStore?.close().catch(() => {});
    if (!deps.db) await db.close();
    throw e;
  }
}
