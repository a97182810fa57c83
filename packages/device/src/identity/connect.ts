/**
 * A device connected with the certificate of its key store, over MQTT with TLS, that renews its
 * certificate by itself: from two thirds of the certificate's lifetime it asks for a new one
 * (`renew`), retries with backoff when that fails, and once the new one is stored reconnects with
 * it (the platform then revokes the old one).
 */
import { backoffDelay, resolveBackoff, type BackoffOptions } from '../backoff.js';
import { FleetwireDevice, type DeviceOptions } from '../device.js';
import { FleetwireError } from '../errors.js';
import { presentedChain, renew, trustedCa } from './enrol.js';
import { readCertificate } from './keys.js';
import { IdentityStore, type StoredCredentials } from './store.js';

export interface RenewalOptions {
  /** When to renew, as the share of the certificate's lifetime gone by (default 2/3). */
  at?: number;
  /** Delays between failed renewals (default 1 minute, doubling, up to 1 hour). */
  retry?: BackoffOptions;
  /** The platform's HTTPS API, when not the enrolment's `http` endpoint. */
  url?: string;
  /** Ask for a certificate of a new key each time (default false). */
  newKey?: boolean;
}

export interface EnrolledDeviceOptions extends Omit<DeviceOptions, 'url' | 'deviceId' | 'secret' | 'cert' | 'key'> {
  /** The key store folder (default `./fleetwire-device`). */
  dir?: string;
  /** The MQTT over TLS address; default the enrolment's `mqtts` endpoint. */
  url?: string;
  /** Automatic renewal (on by default); false turns it off. */
  renewal?: RenewalOptions | false;
}

export const defaultRenewal = {
  at: 2 / 3,
  retry: { minDelayMs: 60_000, maxDelayMs: 3_600_000, factor: 2, jitter: 0.5 } satisfies BackoffOptions,
};

/** setTimeout holds at most 2^31 − 1 ms (about 24.8 days): a longer wait is made of several. */
const longestTimerMs = 2 ** 31 - 1;

/** A client for the store's identity, not yet connected (call `connect()`), renewing its certificate while open. */
export async function enrolledDevice(options: EnrolledDeviceOptions = {}): Promise<FleetwireDevice> {
  const { dir, renewal, url, ...rest } = options;
  const store = new IdentityStore(dir);
  const stored = await store.read();
  const address = url ?? stored.identity.endpoints.mqtts;
  if (!address) throw new FleetwireError('invalid_options', 'the platform gave no MQTT over TLS endpoint (mqtts) at enrolment: pass url');
  const device = new FleetwireDevice({
    ...rest,
    url: address,
    deviceId: stored.identity.device_id,
    cert: presentedChain(stored),
    key: stored.key,
    ca: options.ca ?? trustedCa(stored),
  });
  if (renewal !== false) new CertificateRenewal(device, store, stored, { ...(renewal ?? {}), ...(options.ca !== undefined ? { ca: options.ca } : {}) }).start();
  return device;
}

/** `enrolledDevice`, connected: resolves once connected (see `FleetwireDevice.connect`). */
export async function connectEnrolled(options: EnrolledDeviceOptions = {}): Promise<FleetwireDevice> {
  const device = await enrolledDevice(options);
  await device.connect();
  return device;
}

class CertificateRenewal {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = false;
  private readonly at: number;
  private readonly backoff: Required<BackoffOptions>;

  constructor(
    private readonly device: FleetwireDevice,
    private readonly store: IdentityStore,
    private current: StoredCredentials,
    private readonly options: RenewalOptions & { ca?: DeviceOptions['ca'] },
  ) {
    this.at = options.at ?? defaultRenewal.at;
    if (!(this.at >= 0 && this.at <= 1)) throw new FleetwireError('invalid_options', `renewal.at must be a share of the lifetime from 0 to 1, got ${this.at}`);
    try {
      this.backoff = resolveBackoff({ ...defaultRenewal.retry, ...options.retry });
    } catch (e) {
      throw new FleetwireError('invalid_options', `renewal.retry: ${(e as Error).message}`);
    }
  }

  start(): void {
    this.device.once('close', () => {
      this.stopped = true;
      clearTimeout(this.timer);
    });
    this.scheduleAt(this.renewalTime());
  }

  /** notBefore + at × lifetime of the stored certificate. */
  private renewalTime(): number {
    const { notBefore, notAfter } = readCertificate(this.current.certificate);
    return notBefore.getTime() + this.at * (notAfter.getTime() - notBefore.getTime());
  }

  private scheduleAt(when: number): void {
    if (this.stopped) return;
    const wait = Math.max(0, when - Date.now());
    // a wait past the timer's limit is taken in parts (the clock is read again after each)
    this.timer = setTimeout(() => (wait > longestTimerMs ? this.scheduleAt(when) : void this.renewNow()), Math.min(wait, longestTimerMs));
  }

  private async renewNow(): Promise<void> {
    let facts;
    try {
      await renew({
        dir: this.store.dir,
        ...(this.options.url !== undefined ? { url: this.options.url } : {}),
        ...(typeof this.options.ca === 'string' ? { ca: this.options.ca } : {}),
        ...(this.options.newKey ? { newKey: true } : {}),
      });
      this.current = await new IdentityStore(this.store.dir).read();
      facts = readCertificate(this.current.certificate);
    } catch (e) {
      if (this.stopped || this.device.state === 'closed') return;
      const retryInMs = backoffDelay(this.failures, this.backoff);
      this.failures++;
      this.device.emit('renewal-error', e instanceof Error ? e : new Error(String(e)), { attempt: this.failures, retryInMs });
      this.scheduleAt(Date.now() + retryInMs);
      return;
    }
    // closing: the state says so before the close event does (the client is still ending)
    if (this.stopped || this.device.state === 'closed') return;
    this.failures = 0;
    this.device.useCertificate({ cert: presentedChain(this.current), key: this.current.key });
    this.device.emit('renewed', { certificateSerial: facts.serial, notAfter: facts.notAfter });
    this.scheduleAt(this.renewalTime());
  }
}
