// The flood's load generator (bench/flood/flood.ts) in a process of its own, as bench:flood and
// test/flood.test.ts start it: a flood generated in the process that measures would take the CPU
// the measurements need, and its sockets would not be held by TCP the way a device's are.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { root, running } from './cli.js';

export interface FloodSpec {
  /** The MQTT port. */
  port: number;
  topic: string;
  connections: number;
  /** One per connection (device id and secret); anonymous without. */
  credentials?: { username: string; password: string }[];
  /** Stop with a TCP reset: what the sockets still hold is dropped, not read by the broker after the flood. */
  reset?: boolean;
}

export interface Flood {
  pid: number;
  /** Clients whose CONNECT was accepted and that flood. */
  connected: number;
  /** Clients refused (a CONNACK with an error, or closed before one). */
  refused: number;
  /** Stops every client; resolves to the PUBLISH packets they wrote into their sockets. */
  stop(): Promise<number>;
}

/** Starts the generator; resolves once each of its clients is accepted or refused. cleanupCli kills it if the caller does not stop it. */
export async function startFlood(spec: FloodSpec): Promise<Flood> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'flood', 'flood.ts'), JSON.stringify(spec)], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error('the flood generator exited before its clients connected');
  const { connected, refused } = JSON.parse(String(first.value)) as { connected: number; refused: number };
  return {
    pid: child.pid!,
    connected,
    refused,
    async stop() {
      child.stdin!.write('done\n');
      const last = await lines.next();
      if (last.done) throw new Error('the flood generator exited without saying what it wrote');
      return (JSON.parse(String(last.value)) as { written: number }).written;
    },
  };
}
