import { AppError } from '../core/errors.js';
import type { AuthService } from '../auth/service.js';
import type { Client } from '../messaging/service.js';
import type { FastifyRequest } from 'fastify';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { platformCertificate, type DeviceTrust } from '../identity/trust.js';

/** The platform certificate a client presented over HTTPS, if any (docs/identity.md). */
export function certificateOf(req: FastifyRequest, trust: DeviceTrust): { deviceId: string; serial: string } | undefined {
  const socket = req.raw.socket as TLSSocket;
  if (!socket.encrypted || !socket.authorized) return undefined;
  return platformCertificate(socket.getPeerCertificate(true), trust);
}

/**
 * The DER of a client certificate the platform did not issue (a device maker's factory
 * certificate), whether or not the listener's CAs verified it: the TLS handshake proved the client
 * holds its key, and a manufacturer CA of an organization may have signed it (identity/service.ts).
 */
export function factoryCertificateOf(req: FastifyRequest, trust: DeviceTrust): Uint8Array[] | undefined {
  const socket = req.raw.socket as TLSSocket;
  if (!socket.encrypted) return undefined;
  const peer = socket.getPeerCertificate(true);
  if (!peer?.raw) return undefined;
  if (socket.authorized && platformCertificate(peer, trust)) return undefined;
  // the certificate, then the CA certificates the client sent after it (a maker's intermediates)
  const chain: Uint8Array[] = [];
  for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && chain.length < 5 && !chain.some((d) => Buffer.compare(d, c!.raw) === 0); c = c.issuerCertificate) chain.push(c.raw);
  return chain;
}

/**
 * Reads the client from an HTTP-style Authorization value (or, without one, a platform certificate): `Device <secret>`, `Thing <secret>`
 * (Mainflux clients), `Basic base64(<device id>:<secret>)`, or `Bearer <user token>`. A bare value
 * is taken as a device secret (the `?authorization=` query form of WebSocket clients).
 */
export async function clientFromAuthorization(value: string | undefined, auth: AuthService, certificate?: { deviceId: string; serial: string }): Promise<Client> {
  const v = value?.trim();
  // no Authorization over HTTPS with a certificate the platform issued: the device it names
  if (!v && certificate) return { kind: 'device', credential: { kind: 'certificate', deviceId: certificate.deviceId, serial: certificate.serial } };
  if (!v) throw new AppError('auth.required', 'Send device credentials (Authorization: Device <secret>) or a user token (Authorization: Bearer <token>)');
  const space = v.indexOf(' ');
  const scheme = space < 0 ? '' : v.slice(0, space).toLowerCase();
  const rest = space < 0 ? v : v.slice(space + 1).trim();
  switch (scheme) {
    case 'device':
    case 'thing':
      return { kind: 'device', credential: { kind: 'secret', secret: rest } };
    case 'basic': {
      const decoded = Buffer.from(rest, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new AppError('auth.invalid_credentials', 'Basic credentials must be <device id>:<secret>');
      return { kind: 'device', credential: { kind: 'secret', deviceId: decoded.slice(0, colon), secret: decoded.slice(colon + 1) } };
    }
    case 'bearer':
      return { kind: 'user', principal: await auth.authenticate(rest) };
    case '':
      return { kind: 'device', credential: { kind: 'secret', secret: rest } };
    default:
      throw new AppError('auth.invalid_credentials', `Unknown authorization scheme ${scheme}`);
  }
}
