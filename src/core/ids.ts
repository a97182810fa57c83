import { randomBytes, randomFillSync } from 'node:crypto';

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const buf = Buffer.alloc(16);

/** A UUID version 7 (RFC 9562 §5.7): 48-bit Unix milliseconds then random bits, so ids sort by creation time. */
export function uuidv7(now: number = Date.now()): string {
  randomFillSync(buf, 6, 10);
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    buf[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  buf[6] = (buf[6]! & 0x0f) | 0x70; // version 7
  buf[8] = (buf[8]! & 0x3f) | 0x80; // RFC 9562 variant
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += hex[buf[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return uuidPattern.test(s);
}

/** A random token of `bytes` bytes, base64url without padding (256-bit by default). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
