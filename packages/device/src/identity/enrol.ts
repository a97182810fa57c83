/**
 * Enrolment and renewal, as a device does them (docs/identity.md): the key is made and kept in
 * the store, only a certificate request of it goes to the platform, and the certificate it
 * answers with is stored together with what it says about the device.
 */
import { FleetwireError } from '../errors.js';
import { platformRequest } from './http.js';
import { certificateRequest, generateDeviceKey, publicKeyPem, readCertificate } from './keys.js';
import { IdentityStore, type StoreFile, type StoredCredentials, type StoredIdentity } from './store.js';

/** The answer of `POST /enrol` and `POST /renew`. */
interface Enrolled {
  certificate: string;
  chain: string[];
  serial: string;
  not_after: string;
  org_id: string;
  device_id: string;
  registration_id: string;
  channel_ids: string[];
  root_ca: string;
  endpoints: Record<string, string>;
}

export interface EnrolOptions {
  /** The platform's HTTP API, e.g. `https://iot.example.org` (its `POST /enrol`). */
  url: string;
  /** A one-time enrolment token; omitted, the platform must hold the device's key in a registration. */
  token?: string;
  /** The device serial, as registered (or as the token's serial pattern allows). */
  serial: string;
  /** The key store folder (default `./fleetwire-device`). */
  dir?: string;
  /**
   * CA certificate(s), PEM, that signed the platform's listener certificates (HTTPS, MQTT over TLS)
   * when they are not publicly trusted. Kept in the store (`ca.pem`) for connecting, renewing and
   * enrolling again.
   */
  ca?: string;
  /** Make a new key even when the store has one (a device whose old key may be compromised). Default false: the key is kept. */
  newKey?: boolean;
  timeoutMs?: number;
}

export interface RenewOptions {
  dir?: string;
  /** The platform's HTTPS API; default the `https` endpoint of the enrolment's answer, else its `http` one when that is HTTPS. */
  url?: string;
  /** CA to trust for the HTTPS listener; default the store's `ca.pem`, else the platform root. */
  ca?: string;
  /** Ask for a certificate of a new key (default false: of the same key). */
  newKey?: boolean;
  timeoutMs?: number;
}

/** What a device knows of itself once enrolled. */
export interface Identity extends StoredIdentity {
  dir: string;
}

/**
 * The store's key, made now if it has none: for a registered-key enrolment, whose public key the
 * operator registers first (`publicKey`).
 */
export async function ensureDeviceKey(dir?: string): Promise<{ created: boolean; publicKey: string }> {
  const store = new IdentityStore(dir);
  let key = await store.readKey();
  const created = key === undefined;
  if (key === undefined) {
    key = await generateDeviceKey();
    await store.commit({ 'device.key': key });
  }
  return { created, publicKey: publicKeyPem(key) };
}

/**
 * Enrols the device: keeps the store's key (or makes one; a new one with `newKey`), sends a CSR of
 * it to `POST /enrol` with the token, and stores the certificate. A refusal is a
 * `PlatformRefusedError` whose `code` is the platform's, and leaves the store as it was.
 */
export async function enrol(options: EnrolOptions): Promise<Identity> {
  if (typeof options.serial !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(options.serial)) {
    throw new FleetwireError('invalid_options', `serial must be 1 to 128 printable ASCII characters without spaces, got ${JSON.stringify(options.serial)}`);
  }
  const store = new IdentityStore(options.dir);
  // a new key is kept only with the certificate it gets; a first one is kept at once, so that a
  // retried enrolment (the operator registers it after seeing it refused) uses the same key
  let key = options.newKey ? undefined : await store.readKey();
  const fresh = key === undefined;
  key ??= await generateDeviceKey();
  if (fresh && !options.newKey) await store.commit({ 'device.key': key });
  const csr = await certificateRequest(key, options.serial);
  const ca = options.ca ?? (await store.readCa()); // a re-enrolment trusts what the first one did
  const answer = await platformRequest<Enrolled>({
    method: 'POST',
    url: new URL('/enrol', options.url).href,
    body: { csr, serial: options.serial, ...(options.token !== undefined ? { token: options.token } : {}) },
    ...(ca !== undefined ? { ca } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  const files = storedFiles(answer, options.serial);
  if (options.newKey) files['device.key'] = key;
  if (options.ca !== undefined) files['ca.pem'] = options.ca;
  await store.commit(files);
  return { dir: store.dir, ...(JSON.parse(files['identity.json']!) as StoredIdentity) };
}

/**
 * Renews the certificate (`POST /renew`, the contract in docs/device-sdk.md): over HTTPS, the
 * device authenticated by its current certificate, a CSR of the same key (or, with `newKey`, of a
 * new one). The new certificate and key are stored as one change; the old certificate stays valid
 * until the device first connects with the new one.
 */
export async function renew(options: RenewOptions = {}): Promise<Identity> {
  const store = new IdentityStore(options.dir);
  const current = await store.read();
  // the platform's HTTPS listener beside a plain HTTP one (its own certificate, out of the box), or its HTTP API on TLS
  const base = options.url ?? current.identity.endpoints.https ?? current.identity.endpoints.http;
  if (!base || !base.startsWith('https:')) {
    throw new FleetwireError('invalid_options', `renewal needs the platform's HTTPS API (the device proves itself with its certificate), got ${JSON.stringify(base)}: pass url`);
  }
  const key = options.newKey ? await generateDeviceKey() : current.key;
  const csr = await certificateRequest(key, current.identity.serial);
  const answer = await platformRequest<Enrolled>({
    method: 'POST',
    url: new URL('/renew', base).href,
    body: { csr },
    ca: options.ca ?? trustedCa(current),
    cert: presentedChain(current),
    key: current.key,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  const files = storedFiles(answer, current.identity.serial);
  if (options.newKey) files['device.key'] = key;
  await store.commit(files);
  return { dir: store.dir, ...(JSON.parse(files['identity.json']!) as StoredIdentity) };
}

/** What to trust for the platform's listeners: the store's `ca.pem`, else the platform root (the chain's last). */
export function trustedCa(stored: StoredCredentials): string | string[] {
  if (stored.ca !== undefined) return stored.ca;
  const root = stored.chain.at(-1);
  if (root === undefined) throw new FleetwireError('store_invalid', 'the store has neither ca.pem nor a chain.pem to trust the platform by');
  return root;
}

/** The certificate with its issuing CA, as a TLS client sends it. */
export function presentedChain(stored: StoredCredentials): string {
  return stored.certificate + (stored.chain[0] ?? '');
}

function storedFiles(answer: Enrolled, serial: string): Partial<Record<StoreFile, string>> {
  const facts = readCertificate(answer.certificate); // a certificate that does not parse is not stored
  const identity: StoredIdentity = {
    device_id: answer.device_id,
    org_id: answer.org_id,
    registration_id: answer.registration_id,
    serial,
    certificate_serial: answer.serial,
    not_after: facts.notAfter.toISOString(),
    channel_ids: answer.channel_ids,
    endpoints: answer.endpoints,
    issued_at: new Date().toISOString(),
  };
  const certificate = answer.certificate.endsWith('\n') ? answer.certificate : `${answer.certificate}\n`;
  return {
    'device.pem': certificate,
    'chain.pem': answer.chain.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join(''),
    'identity.json': `${JSON.stringify(identity, null, 2)}\n`,
  };
}
