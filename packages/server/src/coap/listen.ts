import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ConfigError, type Config } from '../core/config.js';
import type { Platform } from '../platform.js';
import { CoapEndpoint, defaultCoapOptions, type CoapOptions } from './endpoint.js';
import { CoapMetrics } from './metrics.js';
import { AppError } from '../core/errors.js';

export interface CoapListener {
  endpoint: CoapEndpoint;
  address: { host: string; port: number };
  close(): Promise<void>;
}

export function coapOptionsFrom(config: Config): CoapOptions {
  return {
    ...defaultCoapOptions,
    maxObserversPerAddress: config.coapMaxObserversPerAddress,
    maxTransfersPerAddress: config.coapMaxTransfersPerAddress,
    confirmIntervalMs: config.coapConfirmInterval,
  };
}

/** UDP socket receive buffer we ask for: bursts of small datagrams outrun the default on busy hosts, bytes. */
const receiveBufferBytes = 4 * 1024 * 1024;

/**
 * Binds the CoAP UDP listener (FLEETWIRE_COAP_PORT on FLEETWIRE_HOST) to a CoapEndpoint over the
 * platform's services. `overrides` shorten RFC timings in tests.
 */
export async function listenCoap(platform: Platform, overrides: Partial<CoapOptions> = {}): Promise<CoapListener> {
  const { config } = platform;
  const log = platform.log.child({ component: 'coap' });
  const socket = dgram.createSocket({ type: isIPv6(config.host) ? 'udp6' : 'udp4' });
  // the gauges are read on scrape, once the endpoint exists
  const metrics: CoapMetrics = new CoapMetrics(platform.metrics, { observers: () => ep.observers.size, transfers: () => ep.transfers.size });
  const ep: CoapEndpoint = new CoapEndpoint(
    {
      messaging: platform.messaging, accessChanges: platform.accessChanges, bus: platform.bus, log, metrics: platform.messagingMetrics, coapMetrics: metrics, now: () => platform.clock.now(), twins: platform.twins, authorizer: platform.authorizer,
      heartbeat: async (secret, deviceId, interval) => {
        const who = await platform.authorizer.identify({ kind: 'secret', secret });
        if (!who.ok) throw who.reason === 'device_disabled' ? new AppError('message.device_disabled') : new AppError('auth.invalid_credentials', 'Unknown device credentials');
        platform.presence.heartbeat(who.device, deviceId, 'coap', interval);
      },
    },
    { ...coapOptionsFrom(config), ...overrides },
    (datagram, peer) => socket.send(datagram, peer.port, peer.address, (e) => e && log.debug({ err: e, address: peer.address }, 'CoAP send failed')),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(config.coapPort, config.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    ep.close();
    socket.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new ConfigError('FLEETWIRE_COAP_PORT', `port ${config.coapPort} is already in use (${err.message}); set FLEETWIRE_COAP_PORT to a free port, 0, or off`);
    throw e;
  }
  try {
    socket.setRecvBufferSize(receiveBufferBytes);
  } catch {
    // the kernel caps it (net.core.rmem_max); the default still works
  }
  socket.on('message', (datagram, rinfo) => ep.receive(datagram, { address: rinfo.address, port: rinfo.port }));
  socket.on('error', (e) => log.warn({ err: e }, 'CoAP socket error'));
  const { address, port } = socket.address();
  log.info({ host: address, port }, 'CoAP listening');
  let closed: Promise<void> | undefined;
  return {
    endpoint: ep,
    address: { host: address, port },
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        ep.close();
        socket.close(() => resolve());
      })),
  };
}
