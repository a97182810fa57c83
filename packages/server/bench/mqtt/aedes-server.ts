// aedes, the reference Node.js broker, on a TCP port: `tsx bench/mqtt/aedes-server.ts <port>`.
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
server.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'listening', port })));
process.on('SIGTERM', () => server.close(() => broker.close(() => process.exit(0))));
