// Holds wildcard subscriptions open on a broker, in a process of its own, for bench/subscriptions/run.ts:
// `count` filters `channels/<i mod 10,000>/messages/+/x<i div 10,000>`, `perConnection` to a
// connection (one SUBSCRIBE each). Prints one JSON line once every SUBACK is in, then waits for a
// line on stdin and closes them.
//
//   tsx bench/subscriptions/hold.ts '{"port":1883,"count":100000,"perConnection":100}'
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface HoldSpec {
  port: number;
  count: number;
  perConnection: number;
}

export interface HoldResult {
  held: number;
  connections: number;
  seconds: number;
  errors: string[];
}

/** The i-th held filter: ten to a channel over 10,000 channels, never matching what the publisher sends. */
export function heldFilter(i: number): string {
  return `channels/${i % 10_000}/messages/+/x${Math.floor(i / 10_000)}`;
}

const errors: string[] = [];

/** Connects, subscribes to `filters` in one SUBSCRIBE, resolves with how many the broker granted. */
function holdOne(port: number, clientId: string, filters: string[]): Promise<{ sock: net.Socket; granted: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    sock.on('data', (d: Buffer) => parser.parse(d));
    sock.once('error', reject);
    sock.once('close', () => reject(new Error(`${clientId} closed`)));
    parser.on('error', reject);
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connack') {
        if (p.returnCode !== 0) return reject(new Error(`CONNACK ${p.returnCode}`));
        sock.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) }));
      } else if (p.cmd === 'suback') {
        resolve({ sock, granted: (p.granted as number[]).filter((g) => g < 0x80).length });
      }
    });
    sock.write(mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, clientId, clean: true, keepalive: 0 }));
  });
}

async function main(spec: HoldSpec): Promise<void> {
  const started = process.hrtime.bigint();
  const sockets: net.Socket[] = [];
  let held = 0;
  let next = 0;
  const batches = Math.ceil(spec.count / spec.perConnection);
  const worker = async () => {
    while (next < batches) {
      const b = next++;
      const filters: string[] = [];
      for (let i = b * spec.perConnection; i < Math.min(spec.count, (b + 1) * spec.perConnection); i++) filters.push(heldFilter(i));
      try {
        const { sock, granted } = await holdOne(spec.port, `hold-${b}-${process.pid}`, filters);
        sockets.push(sock);
        held += granted;
        if (granted < filters.length && errors.length < 5) errors.push(`${filters.length - granted} of ${filters.length} filters refused`);
      } catch (e) {
        if (errors.length < 5) errors.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ held, connections: sockets.length, seconds, errors } satisfies HoldResult));
  await new Promise((r) => process.stdin.once('data', r));
  for (const s of sockets) {
    s.removeAllListeners('close');
    s.on('error', () => {});
    s.destroy();
  }
}

main(JSON.parse(process.argv[2]!) as HoldSpec).then(
  () => process.exit(0),
  (e: unknown) => {
    console.log(JSON.stringify({ held: 0, connections: 0, seconds: 0, errors: [String(e)] } satisfies HoldResult));
    process.exit(1);
  },
);
