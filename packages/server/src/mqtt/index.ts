import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { RawQueries } from '../db/raw.js';
import { busClusterLink } from './cluster.js';
import { SqlRetainedStore, SqlSessionStore } from './sql-store.js';
import type { AddressInfo, Server } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { ConfigError, type Config } from '../core/config.js';
import { connectionBudget, openFileLimit } from '../core/descriptors.js';
import type { Platform } from '../platform.js';
import { Broker, type BrokerOptions } from './broker.js';
import { fleetwirePolicy } from './fleetwire-policy.js';
import { openPolicy } from './open-policy.js';
import { parseAcl } from './acl.js';
import { promBrokerMetrics } from './metrics.js';
import { listenTcp } from './transports/tcp.js';
import { listenTls, listenerContextOptions, readTlsFiles, type DeviceTrust, type ListenerIdentity } from './transports/tls.js';
import type { ListenerCertificates } from '../identity/listener.js';
import { reportPresence } from './presence.js';

export { Broker, defaultBrokerOptions, type BrokerOptions } from './broker.js';
export { mqttOverWebSocket, chooseMqttSubprotocol } from './transports/ws.js';
export { listenerContextOptions, secureContextOptions, type DeviceTrust, type ListenerIdentity } from './transports/tls.js';

export interface MqttServers {
  /** The broker for device traffic (TCP, TLS, WebSocket). */
  broker: Broker;
  /** The open listener's broker, when enabled. */
  openBroker: Broker | undefined;
  addresses: { mqtt?: number; mqtts?: number; open?: number };
  /** The MQTT over TLS listener, when started: SIGHUP swaps its certificate (`setSecureContext`). */
  tls: TlsServer | undefined;
  /** Where the TLS listener's certificate comes from: the operator's files, or the platform (FLEETWIRE_TLS_AUTO). */
  tlsCertificate: 'files' | 'platform' | undefined;
  /** The platform's CAs the TLS listener trusts for device certificates, as last loaded. */
  trust: () => DeviceTrust;
  close(): Promise<void>;
}

export function brokerOptionsFrom(config: Config, maxConnections = config.mqttMaxConnections): Partial<BrokerOptions> {
  return {
    maxKeepAliveSeconds: config.mqttMaxKeepalive,
    maxConnections,
    maxPublishRate: config.mqttMaxPublishRate,
    maxConnectRate: config.mqttMaxConnectRate,
    maxQueuedPerSession: config.mqttMaxQueued,
    connectTimeoutMs: config.mqttConnectTimeout,
    maxPreAuthPacketSize: config.mqttMaxPreauthPacketSize,
    maxUnauthenticated: config.mqttMaxUnauthenticated,
    maxSubscriptions: config.mqttMaxSubscriptions,
    maxPacketSize: config.messageMaxSize + 64 * 1024, // payload plus topic and properties
  };
}

/** Creates the broker(s) over the platform's services. Listeners start with `listen`. */
export function createMqtt(platform: Platform): { broker: Broker; openBroker: Broker | undefined } {
  const { config, log } = platform;
  // the policy and the metrics reach the broker lazily: it is built from them
  const policy = fleetwirePolicy({ authorizer: platform.authorizer, messaging: platform.messaging, bus: platform.bus, log, broker: () => broker, accessChanges: platform.accessChanges, identity: platform.identity, twins: platform.twins, events: { events: platform.events, auth: platform.auth, orgs: platform.orgs, sessions: platform.sessions } });
  const queries = new RawQueries(platform.db);
  const nodeId = config.nodeId || hostname();
  const brokerLog = log.child({ component: 'mqtt' });
  // every connection holds a descriptor: the limit leaves HTTP, the database and NATS theirs
  const fdLimit = openFileLimit();
  const budget = connectionBudget(config.mqttMaxConnections, config.mqttMaxUnauthenticated, fdLimit);
  const limits = { maxConnections: budget.maxConnections, openFileLimit: fdLimit ?? 'unknown', reservedDescriptors: budget.reserved, maxUnauthenticated: config.mqttMaxUnauthenticated };
  if (budget.lowered) brokerLog.warn({ ...limits, configured: config.mqttMaxConnections }, `FLEETWIRE_MQTT_MAX_CONNECTIONS lowered to ${budget.maxConnections}: the process may open ${fdLimit} files (ulimit -n), and ${budget.reserved} stay for HTTP, the database and NATS`);
  else brokerLog.info(limits, 'MQTT connection limit');
  const broker: Broker = new Broker(policy, brokerLog, brokerOptionsFrom(config, budget.maxConnections), promBrokerMetrics(platform.metrics, () => broker.connections.size, () => broker.sessions.size, () => broker.unauthenticated.size), {
    retained: new SqlRetainedStore(queries),
    sessions: new SqlSessionStore(queries),
    nodeId,
    clock: platform.clock,
    ...(platform.bus.kind === 'nats' ? { cluster: busClusterLink(platform.bus, nodeId, brokerLog) } : {}),
  });
  // the device broker's connections are device presence; the open listener's anonymous clients are not
  reportPresence(broker, platform.presence);
  let openBroker: Broker | undefined;
  if (config.mqttOpenPort >= 0) {
    const rules = config.mqttOpenAclFile ? parseAcl(readFileSync(config.mqttOpenAclFile, 'utf8')) : undefined;
    openBroker = new Broker(openPolicy(rules), log.child({ component: 'mqtt-open' }), brokerOptionsFrom(config, budget.maxConnections), undefined, { clock: platform.clock });
  }
  return { broker, openBroker };
}

/**
 * Starts the configured MQTT listeners. MQTT over TLS serves the operator's certificate files when
 * they are set, else `platformCertificate` (the one the platform issued itself), if given.
 */
export async function listenMqtt(platform: Platform, brokers: { broker: Broker; openBroker: Broker | undefined }, platformCertificate?: ListenerCertificates): Promise<MqttServers> {
  const { config, log } = platform;
  const servers: Server[] = [];
  const addresses: MqttServers['addresses'] = {};
  const port = (s: Server) => (s.address() as AddressInfo).port;
  let tlsServer: TlsServer | undefined;
  let stopListening = () => {};
  let starting = 'FLEETWIRE_MQTT_PORT'; // the setting of the listener being started, for the error
  await brokers.broker.start(); // persistent sessions resume feeding before clients come
  try {
    if (config.mqttPort >= 0) {
      const s = await listenTcp(brokers.broker, config.host, config.mqttPort);
      servers.push(s);
      addresses.mqtt = port(s);
      log.info({ host: config.host, port: addresses.mqtt }, 'MQTT listening');
    }
    const files = config.mqttTlsCert ? { cert: config.mqttTlsCert, key: config.mqttTlsKey, ...(config.mqttTlsCa ? { ca: config.mqttTlsCa } : {}) } : undefined;
    const issued = files ? undefined : platformCertificate;
    if ((files || issued) && config.mqttsPort >= 0) {
      starting = 'FLEETWIRE_MQTTS_PORT';
      // the files are read again each time (a renewal writes over them); the platform's is the one it serves now
      const identity = (): ListenerIdentity => (files ? readTlsFiles(files) : { ...issued!.current(), ...(config.mqttTlsCa ? { ca: readFileSync(config.mqttTlsCa, 'utf8') } : {}) });
      const s = await listenTls(brokers.broker, config.host, config.mqttsPort, identity(), () => platform.trust.current());
      const swap = (why: string, trust: DeviceTrust) => {
        try {
          s.setSecureContext(listenerContextOptions(identity(), trust));
          log.info({ issuers: trust.issuers.size }, why);
        } catch (e) {
          log.error({ err: e }, 'the MQTT TLS listener could not take its new secure context; it keeps the one it has');
        }
      };
      // a new organization's issuing CA, made on any node: trusted from then on
      const stopTrust = platform.trust.onChange((t) => swap('MQTT over TLS trusts a new issuing CA', t));
      // the platform's certificate renewed, here or on another node: served from then on
      const stopRenewal = issued ? issued.onChange(() => swap('MQTT over TLS serves the renewed listener certificate', platform.trust.current())) : () => {};
      stopListening = () => {
        stopTrust();
        stopRenewal();
      };
      servers.push(s);
      tlsServer = s;
      addresses.mqtts = port(s);
      log.info({ host: config.host, port: addresses.mqtts, certificate: files ? 'files' : 'platform', clientCertificates: Boolean(config.mqttTlsCa) }, 'MQTT over TLS listening');
    }
    if (brokers.openBroker) {
      starting = 'FLEETWIRE_MQTT_OPEN_PORT';
      const s = await listenTcp(brokers.openBroker, config.host, config.mqttOpenPort);
      servers.push(s);
      addresses.open = port(s);
      log.warn({ host: config.host, port: addresses.open, acl: config.mqttOpenAclFile || 'none: everything allowed' }, 'open MQTT listener (anonymous, any topic) listening: development and conformance testing only');
    }
  } catch (e) {
    for (const s of servers) s.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new ConfigError(starting, `the port is already in use (${err.message}); set ${starting} to a free port, 0, or off`);
    throw e;
  }
  return {
    ...brokers,
    addresses,
    tls: tlsServer,
    tlsCertificate: tlsServer ? (config.mqttTlsCert ? 'files' : 'platform') : undefined,
    trust: () => platform.trust.current(),
    async close() {
      stopListening();
      await brokers.broker.close();
      await brokers.openBroker?.close();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
