import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Platform } from '../platform.js';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { ListenerCertificates } from '../identity/listener.js';
import type { Config } from '../core/config.js';
import type { DeviceTrust } from '../identity/trust.js';
import { requestChildLogger, type Logger } from '../core/logger.js';
import type { ChildLoggerOptions } from 'pino';
import { clientError, frameworkError, installProblemHandlers } from './problem.js';
import { installAuth } from './auth.js';
import { installTextChecks } from './text.js';
import { createMetrics, installHttpMetrics } from './metrics.js';
import { opsRoutes } from './ops.js';
import { installOpenApi } from './openapi.js';
import { Problem } from './schemas.js';
import { authRoutes } from './routes/auth.js';
import { userRoutes } from './routes/users.js';
import { orgRoutes } from './routes/orgs.js';
import { deviceRoutes } from './routes/devices.js';
import { presenceRoutes } from './routes/presence.js';
import { channelRoutes } from './routes/channels.js';
import { groupRoutes } from './routes/groups.js';
import { connectionRoutes } from './routes/connections.js';
import { messageRoutes } from './routes/messages.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { wsRoutes } from './routes/live.js';
import { endpointRoutes, type ListeningPorts } from './routes/endpoints.js';
import { identityRoutes } from './routes/identity.js';
import { estRoutes } from './routes/est.js';
import { twinRoutes } from './routes/twins.js';
import { eventRoutes } from './routes/events.js';
import { installAudit } from './audit.js';
import { installConsole, type ConsoleOptions } from './console.js';
import websocket from '@fastify/websocket';
import { chooseMqttSubprotocol, mqttOverWebSocket, type Broker } from '../mqtt/index.js';

export type App = FastifyInstance;

/** The HTTPS listener's certificate and key (read from their files) and the CAs of device certificates. */
export function httpsContext(config: Config, trust: DeviceTrust): SecureContextOptions {
  return { key: readFileSync(config.httpTlsKey), cert: readFileSync(config.httpTlsCert), ca: trust.certificates };
}

/**
 * HTTPS on a port of its own (FLEETWIRE_HTTPS_PORT) beside the plain HTTP listener, into the same
 * app (routes, hooks, WebSocket upgrades), with the certificate the platform issued itself: the
 * plain listener stays where the README's first commands and the console expect it. As on an HTTPS
 * HTTP listener, a device may present its platform certificate instead of a secret. Not listening
 * yet: `listen` it. A renewed certificate, or a new issuing CA, is taken without a restart.
 */
export function httpsBeside(app: App, platform: Platform, certificate: ListenerCertificates): { server: HttpsServer; stop(): void } {
  const context = (): SecureContextOptions => {
    const { cert, key } = certificate.current();
    return { cert, key, ca: platform.trust.current().certificates, minVersion: 'TLSv1.2' };
  };
  const server = createHttpsServer({ ...context(), requestCert: true, rejectUnauthorized: false }, app.routing);
  // the plain listener's limits (Fastify set them on its server) hold on this one too
  server.requestTimeout = app.server.requestTimeout;
  server.headersTimeout = app.server.headersTimeout;
  server.keepAliveTimeout = app.server.keepAliveTimeout;
  server.on('clientError', clientError);
  // @fastify/websocket takes upgrades from the app's own server: handed over, they go through the same routes
  server.on('upgrade', (req, socket, head) => app.server.emit('upgrade', req, socket, head));
  const swap = (why: string) => {
    try {
      server.setSecureContext(context());
      platform.log.info(why);
    } catch (e) {
      platform.log.error({ err: e }, 'the HTTPS listener could not take its new secure context; it keeps the one it has');
    }
  };
  const stops = [platform.trust.onChange(() => swap('HTTPS trusts a new issuing CA')), certificate.onChange(() => swap('HTTPS serves the renewed listener certificate'))];
  return { server, stop: () => stops.forEach((stop) => stop()) };
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** Builds the HTTP app over the platform's services. Does not listen: call `listen` (or `inject` in tests). */
export interface AppOptions {
  /** The MQTT broker that `/mqtt` (MQTT over WebSocket) hands connections to. */
  mqttBroker?: () => Broker | undefined;
  /** The ports the other listeners bound, for `GET /endpoints`; none by default (an app not listening). */
  listening?: () => ListeningPorts;
  /** Where the built web console is (tests); default packages/console/dist. */
  console?: ConsoleOptions;
}

export async function buildApp(platform: Platform, options: AppOptions = {}): Promise<App> {
  const { config } = platform;
  // over HTTPS a device may present its platform certificate instead of a secret (docs/identity.md)
  const https = config.httpTlsCert ? { ...httpsContext(config, platform.trust.current()), requestCert: true, rejectUnauthorized: false } : null;
  const app = Fastify({
    loggerInstance: platform.log as FastifyBaseLogger,
    childLoggerFactory: (logger, bindings, options) => requestChildLogger(logger as Logger, bindings, options as ChildLoggerOptions) as FastifyBaseLogger,
    bodyLimit: config.httpBodyLimit,
    trustProxy: config.trustProxy,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    ...(https ? { https } : {}),
  }) as unknown as FastifyInstance;

  // The API speaks JSON only. Fastify would also parse text/plain (what fetch sends for a string
  // body), which then fails validation with a misleading 400; refuse it with 415 like other types.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    done();
  });
  if (https) {
    const stopTrust = platform.trust.onChange((t) => {
      try {
        (app.server as unknown as TlsServer).setSecureContext(httpsContext(config, t));
      } catch (e) {
        platform.log.error({ err: e }, 'the HTTPS listener could not take the new issuing CA; it keeps those it has');
      }
    });
    app.addHook('onClose', async () => stopTrust());
  }
  app.addSchema(Problem);
  installProblemHandlers(app);
  installAuth(app, platform);
  installAudit(app, platform);
  installTextChecks(app);
  const registry = createMetrics(platform);
  installHttpMetrics(app, registry);

  await installOpenApi(app, config);

  opsRoutes(app, platform, registry);
  authRoutes(app, platform);
  userRoutes(app, platform);
  orgRoutes(app, platform);
  deviceRoutes(app, platform);
  presenceRoutes(app, platform);
  channelRoutes(app, platform);
  groupRoutes(app, platform);
  connectionRoutes(app, platform);
  messageRoutes(app, platform);
  deadLetterRoutes(app, platform);
  endpointRoutes(app, config, options.listening ?? (() => ({})), Boolean(options.mqttBroker));
  identityRoutes(app, platform, options.listening ?? (() => ({})), Boolean(options.mqttBroker));
  estRoutes(app, platform);
  twinRoutes(app, platform);
  await installConsole(app, options.console);
  await app.register(websocket, {
    options: { maxPayload: platform.config.messageMaxSize + 64 * 1024, handleProtocols: (protocols) => chooseMqttSubprotocol(protocols) },
    // A client's bad frame (WS_ERR_…: invalid UTF-8 in a text frame, over the size limit) or its
    // connection failing (ECONNRESET, EPIPE…) is not the server's error: ws has sent the close code
    // that says why (1007, 1009) or the socket is gone, and it closes on its own. Anything else (a
    // handler that threw) is a bug, and ends the connection with 1011.
    errorHandler: (error, socket, request) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && /^(WS_ERR_|E[A-Z]+$)/.test(code)) {
        request.log.info({ code, err: error.message }, 'WebSocket client error');
        return;
      }
      request.log.error({ err: error }, 'WebSocket handler failed');
      if (socket.readyState === socket.OPEN) socket.close(1011, 'internal error');
      else socket.terminate();
    },
  });
  wsRoutes(app, platform);
  eventRoutes(app, platform);
  if (options.mqttBroker) mqttOverWebSocket(app, options.mqttBroker);
  return app;
}
