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

/** The listener's certificate, key and CA read from their files: at start, and again on SIGHUP (`setSecureContext`); the platform's CAs beside them. */
export function secureContextOptions(files: TlsFiles, trust?: DeviceTrust): tls.SecureContextOptions {
  const ca = [...(files.ca ? [readFileSync(files.ca, 'utf8')] : []), ...(trust?.certificates ?? [])];
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ...(ca.length > 0 ? { ca } : {}), minVersion: 'TLSv1.2' };
}

/**
 * MQTT over TLS. Clients may present a certificate; one the trusted CAs verify identifies the
 * device by its CN, and one the platform issued also by its serial, so that revoking it ends its
 * sessions. A client without one (or with one no trusted CA signs) may still log in with its id
 * and secret: the certificate is then ignored.
 */
export function listenTls(broker: Broker, host: string, port: number, files: TlsFiles, trust?: () => DeviceTrust): Promise<tls.Server> {
  const asks = () => Boolean(files.ca) || Boolean(trust);
  const server = tls.createServer(
    {
      ...secureContextOptions(files, trust?.()),
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
