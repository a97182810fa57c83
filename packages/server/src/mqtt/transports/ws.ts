import type { FastifyInstance } from 'fastify';
import { createWebSocketStream } from 'ws';
import type { Broker } from '../broker.js';

/** Subprotocols MQTT clients offer on WebSocket (MQTT §6): `mqtt`, and `mqttv3.1` from old clients. */
export function chooseMqttSubprotocol(protocols: Set<string>): string | false {
  if (protocols.has('mqtt')) return 'mqtt';
  if (protocols.has('mqttv3.1')) return 'mqttv3.1';
  return false;
}

/** MQTT over WebSocket at `/mqtt` on the HTTP server; binary frames carry the MQTT byte stream. */
export function mqttOverWebSocket(app: FastifyInstance, broker: () => Broker | undefined): void {
  app.get('/mqtt', { websocket: true, config: { auth: 'none' }, schema: { hide: true } }, (socket, req) => {
    const b = broker();
    if (!b) {
      socket.close(1011, 'MQTT is not enabled');
      return;
    }
    const stream = createWebSocketStream(socket);
    stream.on('error', () => stream.destroy());
    b.handle(stream, { transport: 'ws', remoteAddress: req.ip });
  });
}
