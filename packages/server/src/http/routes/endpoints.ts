import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { Type } from 'typebox';
import type { Config } from '../../core/config.js';
import { problems } from '../schemas.js';

/** The ports the platform's listeners actually bound (port 0 picks one), known once they listen. */
export interface ListeningPorts {
  /** HTTPS beside the plain HTTP listener (FLEETWIRE_HTTPS_PORT), when started. */
  https?: number;
  mqtt?: number;
  mqtts?: number;
  coap?: number;
}

const Url = (description: string) => Type.String({ format: 'uri', description });

const Endpoints = Type.Object({
  http: Url('The HTTP API (and the console)'),
  https: Type.Optional(Url('The same API over HTTPS on a port of its own, with the certificate the platform issued itself (FLEETWIRE_HTTPS_PORT); absent unless it is started, and with FLEETWIRE_PUBLIC_URL (then the base of `http`)')),
  mqtt: Type.Optional(Url('MQTT over TCP; absent when the listener is off')),
  mqtts: Type.Optional(Url('MQTT over TLS; absent unless it is started')),
  mqtt_ws: Type.Optional(Url('MQTT over WebSocket, on the HTTP listener')),
  coap: Type.Optional(Url('CoAP over UDP; absent when the listener is off')),
}, { additionalProperties: false, description: 'Where devices and clients connect' });

/**
 * The host clients reach the platform at: FLEETWIRE_PUBLIC_URL's when set, else the one the
 * request was sent to (its Host header; X-Forwarded-Host behind a trusted proxy).
 */
function hostOf(config: Config, req: FastifyRequest): string {
  if (config.publicUrl) return new URL(config.publicUrl).hostname;
  return req.hostname;
}

export function endpointRoutes(app: FastifyInstance, config: Config, listening: () => ListeningPorts, mqttOverWebSocket: boolean): void {
  app.get('/endpoints', {
    config: { personalTokens: true },
    schema: {
      operationId: 'getEndpoints',
      tags: ['operations'],
      summary: 'Where devices connect',
      description: "The URLs of the platform's listeners, for any signed-in user: the host is FLEETWIRE_PUBLIC_URL's when set, else the request's; the ports are those actually bound. A listener that is off is absent. The same for every organization.",
      response: { 200: Endpoints, ...problems(401) },
    },
  }, async (req) => endpointsOf(config, app, req, listening(), mqttOverWebSocket));
}

/** The URLs of the listeners as a client of `req` reaches them (GET /endpoints, and an enrolment's answer). */
export function endpointsOf(config: Config, app: FastifyInstance, req: FastifyRequest, ports: ListeningPorts, mqttOverWebSocket: boolean): Record<string, string> {
  const host = hostOf(config, req);
  const bound = app.server.address() as AddressInfo | null;
  const http = config.publicUrl ? config.publicUrl.replace(/\/+$/, '') : `${config.httpTlsCert ? 'https' : 'http'}://${host}:${bound?.port ?? config.httpPort}`;
  return {
    http,
    ...(ports.https !== undefined && !config.publicUrl ? { https: `https://${host}:${ports.https}` } : {}),
    ...(ports.mqtt !== undefined ? { mqtt: `mqtt://${host}:${ports.mqtt}` } : {}),
    ...(ports.mqtts !== undefined ? { mqtts: `mqtts://${host}:${ports.mqtts}` } : {}),
    ...(mqttOverWebSocket ? { mqtt_ws: `${http.replace(/^http/, 'ws')}/mqtt` } : {}),
    ...(ports.coap !== undefined ? { coap: `coap://${host}:${ports.coap}` } : {}),
  };
}
