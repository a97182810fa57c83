// What the identity benches share (bench/mtls/run.ts, bench/revocation/run.ts): devices with
// certificates from the platform's CA, enrolled once before anything is timed, and the TLS
// listener's own certificate. Each device makes its own EC P-256 key and a CSR of it (as a device
// does; the platform never sees the key), its key is registered in bulk with the channel it joins,
// and it enrols with `POST /enrol` and no token (its signature proves it holds the registered key).
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../../test/helpers/cli.js';
import { certificateAuthority } from '../../test/helpers/tls.js';
import { createCsr } from '../../src/identity/pki.js';

/** A device's credentials for MQTT over TLS. */
export interface CertificateDevice {
  deviceId: string;
  /** The certificate's serial (hex), as `POST /orgs/{org}/certificates/{serial}/revoke` takes it. */
  serial: string;
  /** PEM: the device certificate, then its issuing CA (the chain a device sends). */
  cert: string;
  /** PEM, PKCS#8: the device's own P-256 key. */
  key: string;
}

export interface EnrolledFleet {
  devices: CertificateDevice[];
  /** PEM: the organization's issuing CA, then the platform root (what another broker needs as its cafile). */
  caChain: string;
  /** Enrolments a second over the whole set-up (for the log: the set-up's own cost). */
  enrolRate: number;
}

/**
 * The listener's P-256 certificate for 127.0.0.1 (`cert`, `key`: files in a temp folder) and the
 * CA that signed it (`caPem`, what the devices trust): the same for every broker of a run.
 */
export function listenerCertificate(): { caPem: string; cert: string; key: string; remove(): void } {
  const made = certificateAuthority([]);
  return { caPem: readFileSync(made.ca, 'utf8'), cert: made.serverCert, key: made.serverKey, remove: () => rmSync(made.dir, { recursive: true, force: true }) };
}

/**
 * `count` devices of `org` with platform certificates, connected to `channel` for publish and
 * subscribe: registered by key in bulk (1,000 a request), then enrolled `concurrency` at a time.
 * The platform needs FLEETWIRE_ENROLMENT_MAX_PER_ADDRESS above `count`: every enrolment comes from 127.0.0.1.
 */
export async function enrolFleet(api: string, token: string, org: string, channel: string, count: number, concurrency = 16): Promise<EnrolledFleet> {
  const made = Array.from({ length: count }, (_, k) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const serial = `MTLS-${k}`;
    return {
      serial,
      fingerprint: createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex'),
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      csr: createCsr(privateKey, { serialNumber: serial }),
    };
  });
  for (let i = 0; i < count; i += 1000) {
    const registrations = made.slice(i, i + 1000).map((d) => ({ serial: d.serial, public_key: d.fingerprint, channel_ids: [channel] }));
    const res = await call(api, 'POST', `/orgs/${org}/registrations/bulk`, { token, body: { registrations } });
    if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
  const devices: CertificateDevice[] = new Array(count);
  let caChain = '';
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const k = next++;
      const res = await call<{ certificate: string; chain: string[]; serial: string; device_id: string }>(api, 'POST', '/enrol', { body: { csr: made[k]!.csr } });
      if (res.status !== 201) throw new Error(`enrol ${made[k]!.serial}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      const { certificate, chain, serial, device_id } = res.body;
      devices[k] = { deviceId: device_id, serial, cert: certificate.trimEnd() + '\n' + chain[0]!.trimEnd() + '\n', key: made[k]!.key };
      caChain ||= chain.map((c) => c.trimEnd() + '\n').join('');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { devices, caChain, enrolRate: count / ((performance.now() - started) / 1000) };
}

/** Writes `value` as JSON into a new temp folder (a generator's spec: thousands of keys do not fit in an argument list); the file and how to remove it. */
export function specFile(value: unknown): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fw-bench-mtls-'));
  const path = join(dir, 'spec.json');
  writeFileSync(path, JSON.stringify(value));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
