import { randomBytes, randomFillSync } from 'node:crypto';

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Random bits for 1024 ids, drawn in one call and used once each: a call per id cost more than the rest of uuidv7 (bench in the report). */
const randomPool = Buffer.alloc(10 * 1024);
let poolOffset = randomPool.length;

/** A UUID version 7 (RFC 9562 §5.7): 48-bit Unix milliseconds then random bits, so ids sort by creation time. */
export function uuidv7(now: number = Date.now()): string {
  if (poolOffset === randomPool.length) {
    randomFillSync(randomPool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 10;
  // 48 bits of milliseconds, big-endian, a byte at a time from the lowest
  let ms = Math.floor(now);
  let time = '';
  for (let i = 0; i < 6; i++) {
    time = hex[ms % 256]! + (i === 2 ? '-' : '') + time;
    ms = Math.floor(ms / 256);
  }
  let s = `${time}-`;
  s += hex[(randomPool[r]! & 0x0f) | 0x70]! + hex[randomPool[r + 1]!]! + '-'; // version 7
  s += hex[(randomPool[r + 2]! & 0x3f) | 0x80]! + hex[randomPool[r + 3]!]! + '-'; // RFC 9562 variant
  for (let i = r + 4; i < r + 10; i++) s += hex[randomPool[i]!]!;
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
