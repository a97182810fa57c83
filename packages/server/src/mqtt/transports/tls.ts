import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Broker } from '../broker.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle for client certificates: when given, clients are asked for one. */
  ca?: string;
}

/** The listener's certificate, key and CA read from their files: at start, and again on SIGHUP (`setSecureContext`). */
export function secureContextOptions(files: TlsFiles): tls.SecureContextOptions {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ...(files.ca ? { ca: readFileSync(files.ca) } : {}), minVersion: 'TLSv1.2' };
}

/**
 * MQTT over TLS. With a CA, clients may present a certificate; one the CA verifies identifies the
 * device by its CN. A client without one (or with one the CA does not sign) may still log in with
 * its id and secret: the certificate is then ignored.
 */
export function listenTls(broker: Broker, host: string, port: number, files: TlsFiles): Promise<tls.Server> {
  const server = tls.createServer(
    {
      ...secureContextOptions(files),
      ...(files.ca ? { requestCert: true, rejectUnauthorized: false } : {}),
    },
    (socket) => {
      socket.setNoDelay(true);
      let certificateCn: string | undefined;
      if (files.ca && socket.authorized) {
        const cn = socket.getPeerCertificate()?.subject?.CN;
        certificateCn = Array.isArray(cn) ? cn[0] : cn;
      }
      broker.handle(socket, { transport: 'tls', ...(socket.remoteAddress ? { remoteAddress: socket.remoteAddress } : {}), ...(certificateCn ? { certificateCn } : {}) });
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
