// The enrolment bench's devices, in a process of their own: each makes its own EC P-256 key and a
// CSR of it (as a device does; the platform never sees the key), then, once told to go, they enrol
// `concurrency` at a time over HTTP (POST /enrol, no token: their keys were registered) as fast as
// the platform answers. It prints one JSON line with the serials and key fingerprints first, and
// one with the timings when done.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createCsr } from '../../src/identity/pki.js';

interface Spec {
  api: string;
  devices: number;
  concurrency: number;
}

const spec = JSON.parse(process.argv[2]!) as Spec;
const devices = Array.from({ length: spec.devices }, (_, k) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = `BENCH-${k}`;
  return { serial, fingerprint: createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex'), body: JSON.stringify({ csr: createCsr(privateKey, { serialNumber: serial }) }) };
});
console.log(JSON.stringify({ devices: devices.map(({ serial, fingerprint }) => ({ serial, fingerprint })) }));

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await lines.next(); // go
const latencies: number[] = [];
const failures: Record<string, number> = {};
let next = 0;
const started = performance.now();
async function worker(): Promise<void> {
  while (next < devices.length) {
    const d = devices[next++]!;
    const t = performance.now();
    const res = await fetch(`${spec.api}/enrol`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: d.body });
    const text = await res.text();
    latencies.push(performance.now() - t);
    if (res.status !== 201) {
      const code = (JSON.parse(text) as { code?: string }).code ?? String(res.status);
      failures[code] = (failures[code] ?? 0) + 1;
    }
  }
}
await Promise.all(Array.from({ length: spec.concurrency }, worker));
console.log(JSON.stringify({ elapsedMs: performance.now() - started, latencies, failures }));
process.exit(0);
