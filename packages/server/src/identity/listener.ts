// The certificate of the platform's own TLS listeners (MQTT over TLS, HTTPS), when no operator gave
// one (docs/identity.md, "TLS out of the box"): a key of the platform's, a certificate signed by the
// platform root for the names clients reach it by, EKU serverAuth. It is stored in the database (the
// key encrypted under the server key, as the CAs' keys are), so that a restart serves the same one and
// so does every process with the same FLEETWIRE_TLS_HOSTS; one list of names, one row. It is renewed
// once two thirds of its lifetime are gone, by whichever process sees it first (the others adopt
// that one), and handed to the listeners without a restart (`setSecureContext`).
import { hostname } from 'node:os';
import { ConfigError, parseTlsHosts, type Config } from '../core/config.js';
import type { Broadcasts } from '../core/broadcast.js';
import { iso, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ServerKeys } from '../auth/keys.js';
import type { Database } from '../db/index.js';
import type { ListenerCertificatesTable } from '../db/schema.js';
import { PkiError, certificateFacts, decryptPrivateKey, encryptPrivateKey, generateKeyPair, issueServerCertificate, privateKeyPem, spkiOf, verifiedBy, type CaKeyPair } from './pki.js';

/** The bus broadcast topic on which a process says it stored a new listener certificate; the data is its host list. */
export const listenerTopic = 'identity.listener';

export interface TlsHosts {
  dnsNames: string[];
  ipAddresses: string[];
}

/** What a TLS listener serves: the certificate and its key (PKCS#8), PEM. */
export interface ListenerCertificate {
  cert: string;
  key: string;
  /** lowercase hex SHA-256 of the certificate's DER */
  fingerprint: string;
  notAfter: Date;
}

export interface ListenerOptions {
  hosts: TlsHosts;
  /** 365 by default (pki.ts), at most 397. */
  validityDays?: number;
  /** How often the stored certificate is looked at again (another process may have renewed it), ms. */
  checkEveryMs?: number;
}

const defaultCheckEveryMs = 3_600_000; // an hour: against a lifetime of months, a renewal is never late by much
const renewAfter = 2 / 3; // × lifetime, as devices renew theirs (docs/identity.md, Renewal)

const wildcardAddresses = new Set(['0.0.0.0', '::', '::0']);

/**
 * The names of the listener certificate: FLEETWIRE_TLS_HOSTS, else localhost, the loopback
 * addresses, the machine's host name, FLEETWIRE_HOST unless it is a wildcard, and the host of
 * FLEETWIRE_PUBLIC_URL. A host name that is no DNS name (some machines have one) is left out.
 */
export function tlsHostsOf(config: Pick<Config, 'tlsHosts' | 'host' | 'publicUrl'>, machine: string = hostname()): TlsHosts {
  if (config.tlsHosts) return parseTlsHosts(config.tlsHosts);
  const candidates = ['localhost', '127.0.0.1', '::1', machine, ...(wildcardAddresses.has(config.host) ? [] : [config.host]), ...(config.publicUrl ? [new URL(config.publicUrl).hostname] : [])];
  const usable = candidates.filter((name) => {
    try {
      parseTlsHosts(name);
      return true;
    } catch {
      return false;
    }
  });
  return parseTlsHosts(usable.join(','));
}

/** The canonical form of a host list, the row's key: lower case, sorted, comma-separated. */
export function hostsKey(hosts: TlsHosts): string {
  return [...hosts.dnsNames, ...hosts.ipAddresses].sort().join(',');
}

export class ListenerCertificates {
  private served: ListenerCertificate | undefined;
  private readonly key: string;
  private readonly listeners = new Set<(c: ListenerCertificate) => void>();
  private timer: NodeJS.Timeout | undefined;
  private subscription: { unsubscribe(): void } | undefined;
  /** One refresh at a time: the timer, a broadcast and a caller may ask at once. */
  private refreshing: Promise<ListenerCertificate> | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: ServerKeys,
    /** The platform root, which signs the certificate. */
    private readonly root: () => Promise<CaKeyPair>,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly bus: Broadcasts,
    private readonly options: ListenerOptions,
  ) {
    this.key = hostsKey(options.hosts);
  }

  /** Loads (or issues) the certificate, then keeps it fresh: a timer, and another process's broadcast. */
  async start(): Promise<ListenerCertificate> {
    const first = await this.refresh();
    const fail = (e: unknown) => this.log.error({ err: e }, 'could not check the listener certificate; the listeners keep the one they have');
    this.timer = setInterval(() => void this.refresh().catch(fail), this.options.checkEveryMs ?? defaultCheckEveryMs);
    this.timer.unref();
    this.subscription = this.bus.onBroadcast(listenerTopic, (hosts) => {
      if (hosts === this.key) void this.refresh().catch(fail);
    });
    return first;
  }

  /** The certificate the listeners serve now. */
  current(): ListenerCertificate {
    if (!this.served) throw new Error('the listener certificate is not loaded: call start() first');
    return this.served;
  }

  /** Calls `listener` with each new certificate; returns the function that stops it. */
  onChange(listener: (c: ListenerCertificate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
    this.listeners.clear();
  }

  /**
   * Reads the stored certificate again: another process's renewal is taken up, one that is due
   * (two thirds of its lifetime gone, expired, or not the current root's) is renewed. The listeners
   * hear of it when what they serve changes.
   */
  refresh(): Promise<ListenerCertificate> {
    const run = (this.refreshing ?? Promise.resolve()).catch(() => undefined).then(() => this.refreshOnce());
    this.refreshing = run;
    return run;
  }

  private async refreshOnce(): Promise<ListenerCertificate> {
    const stored = await this.stored();
    const kept = stored && (await this.fresh(stored)) ? stored : await this.issue(stored?.fingerprint);
    if (kept.fingerprint === this.served?.fingerprint) return this.served;
    const previous = this.served;
    this.served = await this.open(kept);
    if (previous) {
      this.log.info({ fingerprint: this.served.fingerprint, notAfter: this.served.notAfter.toISOString(), hosts: this.key }, 'the TLS listeners serve a new certificate');
      for (const l of this.listeners) l(this.served);
    }
    return this.served;
  }

  private stored(): Promise<ListenerCertificatesTable | undefined> {
    return this.db.kysely.selectFrom('listener_certificates').selectAll().where('hosts', '=', this.key).executeTakeFirst();
  }

  /** Signed by the current root, and less than two thirds of its lifetime gone. */
  private async fresh(row: ListenerCertificatesTable): Promise<boolean> {
    const now = new Date(this.clock.now());
    const facts = await certificateFacts(row.certificate);
    const lifetime = facts.notAfter.getTime() - facts.notBefore.getTime();
    if (now.getTime() >= facts.notBefore.getTime() + lifetime * renewAfter) return false;
    return verifiedBy(row.certificate, (await this.root()).certificatePem, now);
  }

  /**
   * A new key and certificate, stored in place of `replacing` (or as the first for the hosts). When
   * another process stored one first, its is kept and this one is thrown away: all serve the same.
   */
  private async issue(replacing: string | undefined): Promise<ListenerCertificatesTable> {
    const now = this.clock.now();
    const keys = await generateKeyPair();
    const issued = await issueServerCertificate(await this.root(), await spkiOf(keys.publicKey), { ...this.options.hosts, now: new Date(now), ...(this.options.validityDays ? { validityDays: this.options.validityDays } : {}) });
    const row: ListenerCertificatesTable = {
      hosts: this.key,
      certificate: issued.pem,
      private_key: await encryptPrivateKey(keys.privateKey, this.keys.caKeys),
      fingerprint: issued.fingerprint,
      not_after: issued.notAfter.toISOString(),
      created_at: iso(now),
    };
    const k = this.db.kysely;
    if (replacing === undefined) await k.insertInto('listener_certificates').values(row).onConflict((oc) => oc.column('hosts').doNothing()).execute();
    else await k.updateTable('listener_certificates').set(row).where('hosts', '=', this.key).where('fingerprint', '=', replacing).execute();
    // the certificates of host lists no process uses any more stay until they expire
    await k.deleteFrom('listener_certificates').where('not_after', '<', iso(now)).where('hosts', '!=', this.key).execute();
    const kept = await this.stored();
    if (!kept) throw new Error('the listener certificate was not stored');
    if (kept.fingerprint === issued.fingerprint) {
      this.log.info({ fingerprint: issued.fingerprint, notAfter: row.not_after, hosts: this.key, renewed: replacing !== undefined }, 'issued the TLS listeners\' certificate');
      this.bus.broadcast(listenerTopic, this.key);
    }
    return kept;
  }

  private async open(row: ListenerCertificatesTable): Promise<ListenerCertificate> {
    let key: string;
    try {
      key = await privateKeyPem(await decryptPrivateKey(row.private_key, this.keys.caKeys));
    } catch (e) {
      if (e instanceof PkiError && e.code === 'key_decrypt') throw new ConfigError('FLEETWIRE_SECRET_KEY', 'the listener certificate in the database was stored under another server key: give every process the same FLEETWIRE_SECRET_KEY');
      throw e;
    }
    const facts = await certificateFacts(row.certificate);
    return { cert: row.certificate, key, fingerprint: row.fingerprint, notAfter: facts.notAfter };
  }
}
