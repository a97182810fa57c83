// The floor of bench/connections: a bare Node TCP server that answers each client's first bytes
// (its CONNECT) with a CONNACK and then holds the socket, reading and keeping nothing. What one
// idle socket costs Node itself, below anything an MQTT broker adds. Prints `{"port": n}` once
// listening; exits on SIGTERM.
import net from 'node:net';

const connack = Buffer.from([0x20, 0x02, 0x00, 0x00]); // §3.2: session present 0, return code 0
const sockets = new Set<net.Socket>();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.once('data', () => socket.write(connack));
  socket.on('data', () => {});
  socket.on('error', () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
process.once('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
});
