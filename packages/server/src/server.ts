import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from './core/config.js';
import { systemClock, type Clock } from './core/clock.js';
import { createLogger, type Logger } from './core/logger.js';
import { version } from './core/version.js';
import { createPlatform, type Platform } from './platform.js';
import { buildApp, type App } from './http/app.js';
import { createMqtt, listenMqtt, type MqttServers } from './mqtt/index.js';
import { listenCoap, type CoapListener } from './coap/index.js';

export interface RunningServer {
  platform: Platform;
  app: App;
  /** Where each listener ended up (port 0 picks a free one). */
  addresses: { http: { host: string; port: number }; mqtt: MqttServers['addresses']; coap?: { host: string; port: number } };
  mqtt: MqttServers;
  /** The CoAP listener, unless FLEETWIRE_COAP_PORT is off. */
  coap: CoapListener | undefined;
  close(): Promise<void>;
}

/** Composition root: config → platform → listeners. */
export async function startServer(config: Config = loadConfig(), opts: { log?: Logger; clock?: Clock } = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  log.info({ version, database: config.databaseUrl ? config.databaseUrl.replace(/\/\/[^@/]*@/, '//***@') : 'sqlite (data folder)' }, 'starting fleetwire');
  const platform = await createPlatform(config, { log, clock });
  try {
    if (config.adminEmail) {
      const { created, user } = await platform.users.ensureAdmin(config.adminEmail, config.adminPassword);
      if (created) log.info({ userId: user.id, email: user.email }, 'created the first platform admin from FLEETWIRE_ADMIN_EMAIL');
    }
    const brokers = createMqtt(platform);
    const app = await buildApp(platform, { mqttBroker: () => brokers.broker });
    await app.listen({ host: config.host, port: config.httpPort });
    const addr = app.server.address() as AddressInfo;
    log.info({ host: addr.address, port: addr.port, tls: Boolean(config.httpTlsCert) }, 'HTTP API listening');
    let mqtt: MqttServers | undefined;
    let coap: CoapListener | undefined;
    try {
      mqtt = await listenMqtt(platform, brokers);
      if (config.coapPort >= 0) coap = await listenCoap(platform);
    } catch (e) {
      await mqtt?.close();
      await app.close();
      throw e;
    }
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        log.info('shutting down');
        const timer = setTimeout(() => {
          log.warn({ timeoutMs: config.shutdownTimeout }, 'open requests did not finish in time; closing them');
          app.server.closeAllConnections();
        }, config.shutdownTimeout);
        timer.unref();
        await coap?.close();
        await mqtt.close();
        await app.close();
        clearTimeout(timer);
        await platform.close();
        log.info('stopped');
      })());
    return { platform, app, mqtt, coap, addresses: { http: { host: addr.address, port: addr.port }, mqtt: mqtt.addresses, ...(coap ? { coap: coap.address } : {}) }, close };
  } catch (e) {
    await platform.close();
    throw e;
  }
}
