import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Shortest server key accepted, bytes: HMAC-SHA-256 keys of less than its output size are weaker. */
export const minServerKeyBytes = 32;

/**
 * The server key signs access tokens and keys the HMAC of device secrets. Derived sub-keys keep
 * the two uses apart.
 */
export class ServerKeys {
  readonly jwt: Uint8Array;
  /** Encrypts the platform's CA and listener private keys at rest (identity/pki.ts). */
  readonly caKeys: Uint8Array;
  private readonly hmacKey: Buffer;

  constructor(master: Buffer) {
    if (master.length < minServerKeyBytes) throw new Error(`the server key must be at least ${minServerKeyBytes} bytes`);
    this.jwt = new Uint8Array(createHmac('sha256', master).update('fleetwire/jwt').digest());
    this.hmacKey = createHmac('sha256', master).update('fleetwire/device-secret').digest();
    this.caKeys = new Uint8Array(createHmac('sha256', master).update('fleetwire/ca-keys').digest());
  }

  /** HMAC-SHA-256 of a device secret, hex: what the database stores and looks up. */
  hashDeviceSecret(secret: string): string {
    return createHmac('sha256', this.hmacKey).update(secret).digest('hex');
  }
}

/** SHA-256 of an opaque high-entropy token (refresh tokens, personal access tokens). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function parseKey(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-f]+$/i.test(t) && t.length % 2 === 0) return Buffer.from(t, 'hex');
  return Buffer.from(t, 'base64');
}

/** The configured key, or the one stored in the data folder (created on first start, mode 0600). */
export function loadServerKey(configured: string, dataDir: string): { key: Buffer; source: 'config' | 'file' | 'generated' } {
  if (configured) return { key: parseKey(configured), source: 'config' };
  const path = join(dataDir, 'secret.key');
  if (existsSync(path)) return { key: parseKey(readFileSync(path, 'utf8')), source: 'file' };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: 'generated' };
}
