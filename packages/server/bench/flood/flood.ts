// The flood's load generator, in a process of its own: `connections` MQTT 3.1.1 clients (device
// credentials, or anonymous) each write QoS 0 PUBLISHes of a 1-record SenML pack as fast as their
// sockets take them, until a line arrives on standard input (or it closes: a parent that died leaves
// no flood behind). It prints one JSON line when connected (the clients accepted and refused) and one
// with what it wrote when it stops. It never waits for the broker: what the broker does not read
// stays in the sockets (TCP backpressure), which is what the bench and test/flood.test.ts look at.
import net from 'node:net';
import { createInterface } from 'node:readline';
import mqttPacket, { type Packet } from 'mqtt-packet';

interface FloodSpec {
  port: number;
  topic: string;
  connections: number;
  credentials?: { username: string; password: string }[];
  /**
   * Stop with a TCP reset instead of a close: what the sockets still hold is dropped, as when the
   * devices lose power, instead of being read by the broker after the flood (megabytes a socket).
   */
  reset?: boolean;
}

const spec = JSON.parse(process.argv[2]!) as FloodSpec;
const payload = Buffer.from('[{"n":"temperature","u":"Cel","v":21.5}]');
const publish = mqttPacket.generate({ cmd: 'publish', topic: spec.topic, payload, qos: 0, retain: false, dup: false } as Packet);
const chunk = Buffer.concat(Array.from({ length: 1000 }, () => publish));
let written = 0;
let refused = 0;
const sockets: net.Socket[] = [];

async function open(k: number): Promise<void> {
  const s = net.connect(spec.port, '127.0.0.1');
  sockets.push(s);
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  const c = spec.credentials?.[k];
  s.write(mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, clientId: c?.username ?? `flood-${k}`, clean: true, keepalive: 0, ...(c ? { username: c.username, password: Buffer.from(c.password) } : {}) } as Packet));
  // a CONNACK's return code is its fourth byte; a socket closed before one is refused too
  const connack = await new Promise<Buffer>((r) => (s.once('data', r), s.once('close', () => r(Buffer.alloc(0)))));
  // a refused client (wrong credentials, a limit) must not pass for a flooding one: it is counted
  if (connack[3] !== 0) {
    refused++;
    s.destroy();
    return;
  }
  s.on('data', () => {}); // nothing else is expected; read it so that the broker is never held up by us
  const pump = () => {
    while (!s.destroyed && s.write(chunk)) written += 1000;
  };
  s.on('drain', pump);
  pump();
}

await Promise.all(Array.from({ length: spec.connections }, (_, k) => open(k)));
process.stdout.write(JSON.stringify({ connected: sockets.length - refused, refused }) + '\n');
const stop = () => {
  for (const s of sockets) {
    if (spec.reset && !s.destroyed) s.resetAndDestroy();
    else s.destroy();
  }
  process.stdout.write(JSON.stringify({ written }) + '\n');
  process.exit(0);
};
const input = createInterface({ input: process.stdin });
input.once('line', stop);
input.once('close', stop);
