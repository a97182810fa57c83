import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Broker } from '../broker.js';
import { platformCertificate, type DeviceTrust } from '../../identity/trust.js';

export type { DeviceTrust } from '../../identity/trust.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle for client certificates: when given, clients are asked for one. */
  ca?: string;
}

/** What a TLS listener serves (PEM): the operator's files as read, or the certificate the platform issued itself. */
export interface ListenerIdentity {
  cert: string | Buffer;
  key: string | Buffer;
  /** The operator's CA bundle for client certificates (FLEETWIRE_MQTT_TLS_CA), beside the platform's CAs. */
  ca?: string;
}

/** The listener's certificate, key and CA read from their files: at start, and again on SIGHUP (`setSecureContext`). */
export function readTlsFiles(files: TlsFiles): ListenerIdentity {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ...(files.ca ? { ca: readFileSync(files.ca, 'utf8') } : {}) };
}

/** The secure context of a listener serving `identity`, trusting the platform's CAs for client certificates beside its own. */
export function listenerContextOptions(identity: ListenerIdentity, trust?: DeviceTrust): tls.SecureContextOptions {
  const ca = [...(identity.ca ? [identity.ca] : []), ...(trust?.certificates ?? [])];
  return { cert: identity.cert, key: identity.key, ...(ca.length > 0 ? { ca } : {}), minVersion: 'TLSv1.2' };
}

/** The secure context of a listener of files, read from them now; the platform's CAs beside the files' own. */
export function secureContextOptions(files: TlsFiles, trust?: DeviceTrust): tls.SecureContextOptions {
  return listenerContextOptions(readTlsFiles(files), trust);
}

/**
 * MQTT over TLS. Clients may present a certificate; one the trusted CAs verify identifies the
 * device by its CN, and one the platform issued also by its serial, so that revoking it ends its
 * sessions. A client without one (or with one no trusted CA signs) may still log in with its id
 * and secret: the certificate is then ignored.
 */
export function listenTls(broker: Broker, host: string, port: number, identity: ListenerIdentity, trust?: () => DeviceTrust): Promise<tls.Server> {
  const asks = () => Boolean(identity.ca) || Boolean(trust);
  const server = tls.createServer(
    {
      ...listenerContextOptions(identity, trust?.()),
      ...(asks() ? { requestCert: true, rejectUnauthorized: false } : {}),
    },
    (socket) => {
      socket.setNoDelay(true);
      let certificateCn: string | undefined;
      let certificateSerial: string | undefined;
      if (asks() && socket.authorized) {
        const peer = socket.getPeerCertificate(true);
        const cn = peer?.subject?.CN;
        certificateCn = Array.isArray(cn) ? cn[0] : cn;
        if (trust) certificateSerial = platformCertificate(peer, trust())?.serial;
      }
      broker.handle(socket, {
        transport: 'tls',
        ...(socket.remoteAddress ? { remoteAddress: socket.remoteAddress } : {}),
        ...(certificateCn ? { certificateCn } : {}),
        ...(certificateSerial ? { certificateSerial } : {}),
      });
    },
  );
  // a failed handshake is the client's problem, not the process's
  server.on('tlsClientError', (e) => broker.log.info({ err: e.message }, 'MQTT TLS handshake failed'));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
