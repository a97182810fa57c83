// What the TLS listeners trust for device certificates (docs/identity.md): the platform root and
// every organization's issuing CA, kept here for MQTT over TLS and HTTPS alike, and read again on
// every node when one of them makes a new issuing CA (a bus broadcast).
import type { DetailedPeerCertificate } from 'node:tls';
import type { Broadcasts } from '../core/broadcast.js';
import type { Logger } from '../core/logger.js';
import { trustTopic, type IdentityService } from './service.js';

export interface DeviceTrust {
  /** PEM certificates: the root, then the issuing CAs. */
  certificates: string[];
  /** SHA-256 fingerprints of the issuing CAs, lowercase hex. */
  issuers: ReadonlySet<string>;
}

const hexOf = (fingerprint: string) => fingerprint.replace(/:/g, '').toLowerCase();

/**
 * The device a client certificate names when the platform issued it (its issuer is one of the
 * organizations' CAs): CN = device id, and the serial, lowercase hex of 32 digits (Node drops
 * leading zeros). Undefined for another CA's certificate (an operator's, mapped by its CN alone).
 */
export function platformCertificate(peer: DetailedPeerCertificate | undefined, trust: DeviceTrust): { deviceId: string; serial: string } | undefined {
  const issuer = peer?.issuerCertificate;
  if (!peer || !issuer || issuer === peer || !trust.issuers.has(hexOf(issuer.fingerprint256))) return undefined;
  const cn = peer.subject?.CN;
  const deviceId = Array.isArray(cn) ? cn[0] : cn;
  if (!deviceId) return undefined;
  return { deviceId, serial: peer.serialNumber.toLowerCase().padStart(32, '0') };
}

export class DeviceTrustCache {
  private trust: DeviceTrust = { certificates: [], issuers: new Set() };
  private readonly listeners = new Set<(t: DeviceTrust) => void>();
  private readonly subscription: { unsubscribe(): void };

  constructor(
    private readonly identity: IdentityService,
    bus: Broadcasts,
    private readonly log: Logger,
  ) {
    this.subscription = bus.onBroadcast(trustTopic, () => {
      this.load()
        .then((t) => {
          for (const l of this.listeners) l(t);
        })
        .catch((e: unknown) => this.log.error({ err: e }, 'could not load the issuing CAs for the TLS listeners; they keep those they have'));
    });
  }

  async load(): Promise<DeviceTrust> {
    this.trust = await this.identity.trustedCas();
    return this.trust;
  }

  current(): DeviceTrust {
    return this.trust;
  }

  /** Calls `listener` with the new trust after every reload; returns the function that stops it. */
  onChange(listener: (t: DeviceTrust) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    this.subscription.unsubscribe();
    this.listeners.clear();
  }
}
