import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * scrypt cost of new hashes as log2 N, with r=8, p=1 and a 64-byte key. 15 (N=2^15) is OWASP's
 * minimum recommendation and the default of FLEETWIRE_PASSWORD_HASH_COST; tests hash at a lower cost.
 */
export const defaultPasswordCost = 15;
const r = 8;
const p = 1;
const keyLength = 64;

/** scrypt needs 128 × N × r bytes; twice that leaves Node's own headroom. */
const maxmemFor = (N: number, r: number) => 128 * N * r * 2;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keyLength, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64url), so the cost can be changed later without breaking old hashes. */
export async function hashPassword(password: string, cost = defaultPasswordCost): Promise<string> {
  const N = 2 ** cost;
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, { N, r, p, maxmem: maxmemFor(N, r) });
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Checks a password against a stored hash at the hash's own parameters, whatever the current cost. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const expected = Buffer.from(parts[5]!, 'base64url');
  const key = await scrypt(password, Buffer.from(parts[4]!, 'base64url'), { N, r, p, maxmem: maxmemFor(N, r) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A hash to compare against when the account does not exist, so timing does not reveal which
 * emails are registered: made at the cost new hashes get, so that it takes as long as theirs.
 */
const dummies = new Map<number, Promise<string>>();
export function dummyPasswordHash(cost = defaultPasswordCost): Promise<string> {
  let dummy = dummies.get(cost);
  if (!dummy) dummies.set(cost, (dummy = hashPassword(randomBytes(16).toString('hex'), cost)));
  return dummy;
}
