import net from 'node:net';
import type { Broker } from '../broker.js';

/** MQTT over TCP: each socket is handed to the broker as a stream. */
export function listenTcp(broker: Broker, host: string, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket, { transport: 'tcp', ...(socket.remoteAddress ? { remoteAddress: socket.remoteAddress } : {}) });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
