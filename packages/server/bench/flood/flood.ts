// The flood's load generator, in a process of its own: `connections` MQTT 3.1.1 clients (device
// credentials, or anonymous) each write QoS 0 PUBLISHes of a 1-record SenML pack as fast as their
// sockets take them, until a line arrives on standard input. It prints one JSON line when connected
// and one with what it wrote when it stops. It never waits for the broker: what the broker does not
// read stays in the sockets (TCP backpressure), which is what the bench looks at.
import net from 'node:net';
import { createInterface } from 'node:readline';
import mqttPacket, { type Packet } from 'mqtt-packet';

interface FloodSpec {
  port: number;
  topic: string;
  connections: number;
  credentials?: { username: string; password: string }[];
}

const spec = JSON.parse(process.argv[2]!) as FloodSpec;
const payload = Buffer.from('[{"n":"temperature","u":"Cel","v":21.5}]');
const publish = mqttPacket.generate({ cmd: 'publish', topic: spec.topic, payload, qos: 0, retain: false, dup: false } as Packet);
const chunk = Buffer.concat(Array.from({ length: 1000 }, () => publish));
let written = 0;
const sockets: net.Socket[] = [];

async function open(k: number): Promise<void> {
  const s = net.connect(spec.port, '127.0.0.1');
  sockets.push(s);
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  const c = spec.credentials?.[k];
  s.write(mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, clientId: c?.username ?? `flood-${k}`, clean: true, keepalive: 0, ...(c ? { username: c.username, password: Buffer.from(c.password) } : {}) } as Packet));
  await new Promise((r) => s.once('data', r)); // CONNACK
  s.on('data', () => {}); // nothing else is expected; read it so that the broker is never held up by us
  const pump = () => {
    while (!s.destroyed && s.write(chunk)) written += 1000;
  };
  s.on('drain', pump);
  pump();
}

await Promise.all(Array.from({ length: spec.connections }, (_, k) => open(k)));
process.stdout.write(JSON.stringify({ connected: sockets.length }) + '\n');
createInterface({ input: process.stdin }).once('line', () => {
  for (const s of sockets) s.destroy();
  process.stdout.write(JSON.stringify({ written }) + '\n');
  process.exit(0);
});
