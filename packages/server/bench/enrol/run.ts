// Enrolments a second: devices (bench/enrol/devices.ts, another process) each send a CSR of their
// own key to POST /enrol of a `fleetwire start` process on SQLite; the platform verifies it,
// issues the certificate from the organization's CA, makes the device and stores everything. Beside
// it, in the same run, the reference: the CA's own work alone in this process (verifyCsr +
// issueDeviceCertificate, no HTTP, no database), so the table shows what the rest costs.
//
//   npm run bench:enrol -- [--devices 3000] [--concurrency 16]
//
// Fleetwire runs as `npm start` runs it, from the compiled build (the bench builds it first).
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { call, cleanupCli, cliEnv, dataFolder, login, root, startCli } from '../../test/helpers/cli.js';
import { machine, numberOption, table } from '../harness.js';
import { createCsr, generateIssuing, generateRoot, issueDeviceCertificate, verifyCsr } from '../../src/identity/pki.js';

const devices = numberOption('devices', 'FLEETWIRE_BENCH_ENROL_DEVICES', 3000);
const concurrency = numberOption('concurrency', 'FLEETWIRE_BENCH_ENROL_CONCURRENCY', 16);
const target = 500; // enrolments/s over HTTP on SQLite (the identity issue)
const admin = { email: 'bench-admin@example.com', password: 'bench-password-not-secret' };

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const ms = (n: number) => `${n.toFixed(2)} ms`;

/** The CA's work alone: verify a CSR and issue its certificate, one after another, in this process. */
async function reference(n: number): Promise<{ rate: number; p50: number; p99: number }> {
  const root = await generateRoot({ commonName: 'bench root' });
  const issuing = await generateIssuing(root, { orgId: 'bench', commonName: 'bench issuing' });
  const csrs = Array.from({ length: n }, (_, k) => createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, { serialNumber: `REF-${k}` }));
  const times: number[] = [];
  const started = performance.now();
  for (const pem of csrs) {
    const t = performance.now();
    const csr = await verifyCsr(pem);
    await issueDeviceCertificate(issuing, csr.spki, { orgId: 'bench', deviceId: 'device' });
    times.push(performance.now() - t);
  }
  return { rate: n / ((performance.now() - started) / 1000), p50: pct(times, 0.5), p99: pct(times, 0.99) };
}

async function platformCase(): Promise<{ rate: number; p50: number; p99: number; failures: Record<string, number> }> {
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_ADMIN_EMAIL: admin.email, FLEETWIRE_ADMIN_PASSWORD: admin.password, FLEETWIRE_PASSWORD_HASH_COST: '10', FLEETWIRE_ENROLMENT_MAX_PER_ADDRESS: '100000000' }), { built: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'devices.ts'), JSON.stringify({ api: server.api, devices, concurrency })], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const made = JSON.parse(String((await lines.next()).value)) as { devices: { serial: string; fingerprint: string }[] };
    const { token } = await login(server.api, admin.email, admin.password);
    const org = (await call<{ id: string }>(server.api, 'POST', '/orgs', { token, body: { name: 'bench' } })).body.id;
    const channel = (await call<{ id: string }>(server.api, 'POST', `/orgs/${org}/channels`, { token, body: { name: 'telemetry' } })).body.id;
    for (let i = 0; i < made.devices.length; i += 1000) {
      const res = await call(server.api, 'POST', `/orgs/${org}/registrations/bulk`, { token, body: { registrations: made.devices.slice(i, i + 1000).map((d) => ({ serial: d.serial, public_key: d.fingerprint, channel_ids: [channel] })) } });
      if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    }
    // the organization's issuing CA exists before the clock starts (it is made once, at the first enrolment)
    await call(server.api, 'GET', `/orgs/${org}/ca`, { token });
    child.stdin!.write('go\n');
    const done = JSON.parse(String((await lines.next()).value)) as { elapsedMs: number; latencies: number[]; failures: Record<string, number> };
    return { rate: made.devices.length / (done.elapsedMs / 1000), p50: pct(done.latencies, 0.5), p99: pct(done.latencies, 0.99), failures: done.failures };
  } finally {
    child.kill();
    await server.stop();
  }
}

async function main(): Promise<number> {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
  console.log(`enrolment bench: ${machine()}`);
  console.log(`${devices} devices, each its own key and CSR, enrolling ${concurrency} at a time (POST /enrol, registered keys) against fleetwire start on SQLite\n`);
  const platform = await platformCase();
  const ca = await reference(Math.min(devices, 2000));
  console.log(table(['case', 'enrolments/s', 'p50', 'p99'], [
    ['reference: verifyCsr + issueDeviceCertificate, in process, one at a time', ca.rate.toFixed(0), ms(ca.p50), ms(ca.p99)],
    [`Fleetwire: POST /enrol over HTTP, SQLite, ${concurrency} at a time`, platform.rate.toFixed(0), ms(platform.p50), ms(platform.p99)],
  ]));
  const failed = Object.entries(platform.failures);
  if (failed.length > 0) console.log(`\nrefused: ${failed.map(([code, n]) => `${code} × ${n}`).join(', ')}`);
  console.log(`\nenrolments over HTTP on SQLite: ${platform.rate.toFixed(0)}/s against a target of ≥ ${target}/s: ${platform.rate >= target && failed.length === 0 ? 'met' : 'MISSED'}`);
  console.log('an enrolment: the CSR verified, the certificate issued, the device made and connected to its channel, certificate, registration and audit rows stored, in one request');
  return 0;
}

main()
  .then(async (code) => (await cleanupCli(), process.exit(code)))
  .catch(async (e: unknown) => (console.error(e), await cleanupCli(), process.exit(2)));
