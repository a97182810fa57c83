import { existsSync, readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import { ConfigError, causeText, loadConfig, maskUrl, settings, type Config, type SettingKey } from './core/config.js';
import { systemClock, type Clock } from './core/clock.js';
import { createLogger, type Logger } from './core/logger.js';
import { version } from './core/version.js';
import { createPlatform, type Platform } from './platform.js';
import { buildApp, httpsBeside, httpsContext, type App } from './http/app.js';
import type { Server as HttpsServer } from 'node:https';
import { ListenerCertificates, tlsHostsOf } from './identity/listener.js';
import type { ListeningPorts } from './http/routes/endpoints.js';
import { createMqtt, listenMqtt, secureContextOptions, type DeviceTrust, type MqttServers } from './mqtt/index.js';
import { parseAcl } from './mqtt/acl.js';
import { minServerKeyBytes, parseKey } from './auth/keys.js';
import { listenCoap, type CoapListener } from './coap/index.js';

export interface RunningServer {
  platform: Platform;
  app: App;
  /** Where each listener ended up (port 0 picks a free one). */
  addresses: { http: { host: string; port: number }; https?: { host: string; port: number }; mqtt: MqttServers['addresses']; coap?: { host: string; port: number } };
  mqtt: MqttServers;
  /** The CoAP listener, unless FLEETWIRE_COAP_PORT is off. */
  coap: CoapListener | undefined;
  /** The certificate the platform issued its TLS listeners (FLEETWIRE_TLS_AUTO), when one of them serves it. */
  listenerCertificate: ListenerCertificates | undefined;
  /**
   * Applies what can change without a restart (the log level, the TLS certificates, re-read from
   * their files even when their paths are the same) and says what else changed and needs one.
   * A certificate that does not load keeps the listener's current one.
   */
  reload(next: Config): ReloadReport;
  close(): Promise<void>;
}

export interface ReloadReport {
  /** Settings applied (FLEETWIRE_LOG_LEVEL, FLEETWIRE_HTTP_TLS_CERT, FLEETWIRE_MQTT_TLS_CERT). */
  reloaded: string[];
  /** Settings whose new value takes effect only at the next start. */
  restartNeeded: string[];
  /** Settings that could not be applied, and why: the old value stays in effect. */
  failed: { setting: string; error: string }[];
}

/** The HTTP listener's certificate and key, read from their files, and the CAs of device certificates. */
function httpsOptions(config: Config, trust?: DeviceTrust): SecureContextOptions {
  return trust ? httpsContext(config, trust) : { key: readFileSync(config.httpTlsKey), cert: readFileSync(config.httpTlsCert) };
}

function mqttTlsOptions(config: Config, trust?: DeviceTrust): SecureContextOptions {
  return secureContextOptions({ cert: config.mqttTlsCert, key: config.mqttTlsKey, ...(config.mqttTlsCa ? { ca: config.mqttTlsCa } : {}) }, trust);
}

/** The TLS files of a listener, by the setting that names each. */
function httpTlsFiles(config: Config): [string, string][] {
  return [['FLEETWIRE_HTTP_TLS_CERT', config.httpTlsCert], ['FLEETWIRE_HTTP_TLS_KEY', config.httpTlsKey]];
}

function mqttTlsFiles(config: Config): [string, string][] {
  return [['FLEETWIRE_MQTT_TLS_CERT', config.mqttTlsCert], ['FLEETWIRE_MQTT_TLS_KEY', config.mqttTlsKey], ...(config.mqttTlsCa ? [['FLEETWIRE_MQTT_TLS_CA', config.mqttTlsCa] as [string, string]] : [])];
}

/**
 * Reads and loads a listener's certificate and key as the listener would, or throws a ConfigError
 * naming the setting: the file that cannot be read, or the certificate when the pair does not load.
 */
function loadSecureContext(files: [string, string][], read: () => SecureContextOptions): SecureContextOptions {
  for (const [setting, path] of files) {
    try {
      readFileSync(path);
    } catch (e) {
      throw new ConfigError(setting, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? causeText(e)}`);
    }
  }
  const options = read();
  try {
    createSecureContext(options);
  } catch (e) {
    throw new ConfigError(files[0]![0], `the certificate and key do not load together: ${causeText(e)}`);
  }
  return options;
}

/**
 * What start-up would trip over, checked before anything starts (also `fleetwire config check`):
 * the server key's length, every TLS certificate and key (readable, parse, match), the open
 * listener's ACL file, and that FLEETWIRE_HOST resolves. Throws a ConfigError naming the setting.
 * Creates nothing: neither the data folder nor a key.
 */
export async function checkSettings(config: Config): Promise<void> {
  const keyHint = `(e.g. openssl rand -hex ${minServerKeyBytes})`;
  if (config.secretKey) {
    const bytes = parseKey(config.secretKey).length;
    if (bytes < minServerKeyBytes) throw new ConfigError('FLEETWIRE_SECRET_KEY', `the server key is ${bytes} bytes; it must be at least ${minServerKeyBytes} bytes, hex or base64 ${keyHint}`);
  } else {
    const path = join(config.dataDir, 'secret.key');
    if (existsSync(path)) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw new ConfigError('FLEETWIRE_DATA_DIR', `cannot read the server key ${path}: ${(e as NodeJS.ErrnoException).code ?? causeText(e)}`);
      }
      const bytes = parseKey(text).length;
      if (bytes < minServerKeyBytes) throw new ConfigError('FLEETWIRE_SECRET_KEY', `the key in ${path} (FLEETWIRE_DATA_DIR) is ${bytes} bytes; it must be at least ${minServerKeyBytes}: replace it, or set FLEETWIRE_SECRET_KEY ${keyHint}`);
    }
  }
  if (config.httpTlsCert) loadSecureContext(httpTlsFiles(config), () => httpsOptions(config));
  if (config.mqttTlsCert && config.mqttsPort >= 0) loadSecureContext(mqttTlsFiles(config), () => mqttTlsOptions(config));
  if (config.mqttOpenPort >= 0 && config.mqttOpenAclFile) {
    try {
      parseAcl(readFileSync(config.mqttOpenAclFile, 'utf8'));
    } catch (e) {
      throw new ConfigError('FLEETWIRE_MQTT_OPEN_ACL_FILE', causeText(e));
    }
  }
  try {
    await lookup(config.host);
  } catch (e) {
    throw new ConfigError('FLEETWIRE_HOST', `${JSON.stringify(config.host)} does not resolve to an address (${causeText(e)})`);
  }
}

/** A listener that cannot bind, as one line naming the setting to change. */
function listenFailure(e: unknown, portSetting: string, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ConfigError(portSetting, `port ${port} on ${host} is already in use; set ${portSetting} to a free port, or 0 to pick one`);
  if (code === 'EACCES') return new ConfigError(portSetting, `not allowed to listen on port ${port} (ports below 1024 need privileges)`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError('FLEETWIRE_HOST', `${host} is not an address of this machine`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ConfigError('FLEETWIRE_HOST', `${JSON.stringify(host)} does not resolve to an address (${causeText(e)})`);
  return e;
}

/** Settings SIGHUP applies; a change to any other one is logged as needing a restart. */
const reloadable: ReadonlySet<SettingKey> = new Set<SettingKey>(['logLevel', 'httpTlsCert', 'httpTlsKey', 'mqttTlsCert', 'mqttTlsKey', 'mqttTlsCa']);

/**
 * The reload of a running server. It keeps what is in effect (the settings reloads applied since
 * the start, the others as started), so that each reload reports what changed since the last one.
 */
function reloader(config: Config, log: Logger, tlsListeners: { https: TlsServer | undefined; mqtts: TlsServer | undefined; trust?: () => DeviceTrust }): (next: Config) => ReloadReport {
  const running: Config = { ...config };
  return (next) => {
    const report: ReloadReport = { reloaded: [], restartNeeded: [], failed: [] };
    for (const key of Object.keys(settings) as SettingKey[]) if (!reloadable.has(key) && next[key] !== running[key]) report.restartNeeded.push(settings[key].env);

    // Certificates: read again even when their paths did not change (a renewal writes over the files).
    const swap = (server: TlsServer | undefined, setting: string, on: boolean, files: [string, string][], read: () => SecureContextOptions, keys: SettingKey[]) => {
      // a TLS listener is started and stopped only with the process
      if (!server || !on) {
        if (Boolean(server) !== on) report.restartNeeded.push(setting);
        return;
      }
      try {
        // loaded before it is handed over: a certificate that does not load leaves the listener as it was
        server.setSecureContext(loadSecureContext(files, read));
        for (const k of keys) (running as Record<SettingKey, unknown>)[k] = next[k];
        report.reloaded.push(setting);
      } catch (e) {
        report.failed.push({ setting, error: causeText(e) });
        log.error({ setting, err: causeText(e) }, 'reload: the new TLS certificate does not load; the listener keeps the one it has');
      }
    };
    swap(tlsListeners.https, 'FLEETWIRE_HTTP_TLS_CERT', Boolean(next.httpTlsCert), httpTlsFiles(next), () => httpsOptions(next, tlsListeners.trust?.()), ['httpTlsCert', 'httpTlsKey']);
    swap(tlsListeners.mqtts, 'FLEETWIRE_MQTT_TLS_CERT', Boolean(next.mqttTlsCert) && next.mqttsPort >= 0, mqttTlsFiles(next), () => mqttTlsOptions(next, tlsListeners.trust?.()), ['mqttTlsCert', 'mqttTlsKey', 'mqttTlsCa']);

    // The log level: the report is written at the more verbose of the old and new levels, so that it shows either way.
    const levelChanged = next.logLevel !== running.logLevel;
    const rank = (level: string) => log.levels.values[level] ?? Infinity; // `silent` is above every level
    const moreVerbose = rank(next.logLevel) < rank(running.logLevel);
    if (levelChanged) report.reloaded.push('FLEETWIRE_LOG_LEVEL');
    if (levelChanged && moreVerbose) log.level = next.logLevel;
    log.info({ reloaded: report.reloaded, restartNeeded: report.restartNeeded }, 'settings reloaded');
    if (report.restartNeeded.length) log.warn({ settings: report.restartNeeded }, 'changed settings that take effect only after a restart');
    if (levelChanged && !moreVerbose) log.level = next.logLevel;
    running.logLevel = next.logLevel;
    return report;
  };
}

/**
 * The certificate the platform issues its own TLS listeners (identity/listener.ts): loaded, or
 * issued and stored, when FLEETWIRE_TLS_AUTO is on and a TLS listener has no files of the operator.
 */
async function platformListenerCertificate(config: Config, platform: Platform, clock: Clock, log: Logger): Promise<ListenerCertificates | undefined> {
  const mqttsWantsOne = config.mqttsPort >= 0 && !config.mqttTlsCert;
  const httpsWantsOne = config.httpsPort >= 0 && !config.httpTlsCert;
  if (!config.tlsAuto || (!mqttsWantsOne && !httpsWantsOne)) return undefined;
  const certificate = new ListenerCertificates(platform.db, platform.keys, () => platform.identity.root(), clock, log, platform.bus, { hosts: tlsHostsOf(config) });
  const served = await certificate.start();
  log.info({ fingerprint: served.fingerprint, notAfter: served.notAfter.toISOString() }, 'TLS listeners: the platform-issued certificate (its root is GET /.well-known/est/cacerts)');
  return certificate;
}

function listenHttps(server: HttpsServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(listenFailure(e, 'FLEETWIRE_HTTPS_PORT', host, port)));
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/** Composition root: config → platform → listeners. */
export async function startServer(config: Config = loadConfig(), opts: { log?: Logger; clock?: Clock } = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  await checkSettings(config);
  log.info({ version, database: config.databaseUrl ? maskUrl(config.databaseUrl) : 'sqlite (data folder)' }, 'starting fleetwire');
  const platform = await createPlatform(config, { log, clock });
  try {
    if (config.adminEmail) {
      const { created, user } = await platform.users.ensureAdmin(config.adminEmail, config.adminPassword);
      if (created) log.info({ userId: user.id, email: user.email }, 'created the first platform admin from FLEETWIRE_ADMIN_EMAIL');
    }
    const listenerCertificate = await platformListenerCertificate(config, platform, clock, log);
    const brokers = createMqtt(platform);
    const listening: ListeningPorts = {}; // filled in as the listeners bind
    const app = await buildApp(platform, { mqttBroker: () => brokers.broker, listening: () => listening });
    try {
      await app.listen({ host: config.host, port: config.httpPort });
    } catch (e) {
      await app.close();
      throw listenFailure(e, 'FLEETWIRE_HTTP_PORT', config.host, config.httpPort);
    }
    const addr = app.server.address() as AddressInfo;
    log.info({ host: addr.address, port: addr.port, tls: Boolean(config.httpTlsCert) }, 'HTTP API listening');
    let mqtt: MqttServers | undefined;
    let coap: CoapListener | undefined;
    let https: { server: HttpsServer; stop(): void } | undefined;
    let httpsAddress: AddressInfo | undefined;
    try {
      if (listenerCertificate && !config.httpTlsCert && config.httpsPort >= 0) {
        https = httpsBeside(app, platform, listenerCertificate);
        httpsAddress = await listenHttps(https.server, config.host, config.httpsPort);
        log.info({ host: httpsAddress.address, port: httpsAddress.port, certificate: 'platform' }, 'HTTPS listening');
      }
      mqtt = await listenMqtt(platform, brokers, listenerCertificate);
      if (config.coapPort >= 0) coap = await listenCoap(platform);
      Object.assign(listening, { https: httpsAddress?.port, mqtt: mqtt.addresses.mqtt, mqtts: mqtt.addresses.mqtts, coap: coap?.address.port });
    } catch (e) {
      await mqtt?.close();
      https?.stop();
      https?.server.close();
      https?.server.closeAllConnections();
      await app.close();
      listenerCertificate?.stop();
      throw e;
    }
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        log.info('shutting down');
        const timer = setTimeout(() => {
          log.warn({ timeoutMs: config.shutdownTimeout }, 'open requests did not finish in time; closing them');
          app.server.closeAllConnections();
          https?.server.closeAllConnections();
        }, config.shutdownTimeout);
        timer.unref();
        await coap?.close();
        await mqtt.close();
        https?.stop();
        const httpsClosed = https ? new Promise((r) => https.server.close(r)) : undefined;
        https?.server.closeIdleConnections();
        await app.close();
        await httpsClosed;
        listenerCertificate?.stop();
        clearTimeout(timer);
        await platform.close();
        log.info('stopped');
      })());
    // a listener serving the platform's certificate has no files to read again: it renews by itself
    const reload = reloader(config, log, { https: config.httpTlsCert ? (app.server as unknown as TlsServer) : undefined, mqtts: mqtt.tlsCertificate === 'files' ? mqtt.tls : undefined, trust: mqtt.trust });
    const addresses = {
      http: { host: addr.address, port: addr.port },
      ...(httpsAddress ? { https: { host: httpsAddress.address, port: httpsAddress.port } } : {}),
      mqtt: mqtt.addresses,
      ...(coap ? { coap: coap.address } : {}),
    };
    return { platform, app, mqtt, coap, listenerCertificate, addresses, reload, close };
  } catch (e) {
    await platform.close();
    throw e;
  }
}
