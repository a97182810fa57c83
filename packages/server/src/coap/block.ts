import { readUint, uint } from './message.js';
import { PerAddressCount } from './per-address.js';

/** A Block1/Block2 option value (RFC 7959 §2.2): block number, more flag, size exponent. */
export interface BlockOption {
  num: number;
  more: boolean;
  /** SZX: the block is 2^(szx+4) bytes; 7 is reserved (BERT, RFC 8323 only). */
  szx: number;
}

export function parseBlock(value: Buffer): BlockOption | undefined {
  if (value.length > 3) return undefined; // RFC 7959 §2.2: 0 to 3 bytes
  const n = readUint(value);
  return { num: Math.floor(n / 16), more: (n & 8) !== 0, szx: n & 7 };
}

export function encodeBlock(b: BlockOption): Buffer {
  return uint(b.num * 16 + (b.more ? 8 : 0) + b.szx);
}

export function blockSize(szx: number): number {
  return 2 ** (szx + 4);
}

/** Largest block we send: 1024 bytes (SZX 6), as RFC 7959 §2.2 allows on UDP. */
export const sendSzx = 6;

/** One block-wise upload in progress (RFC 7959 §2.5): what came so far, in order. */
interface Transfer {
  address: string;
  chunks: Buffer[];
  received: number;
  contentFormat: number | undefined;
  lastSeen: number;
}

export type BlockResult =
  | { kind: 'continue' }
  | { kind: 'complete'; payload: Buffer; contentFormat: number | undefined }
  | { kind: 'incomplete'; why: string }
  | { kind: 'too_large'; received: number };

/**
 * Reassembles Block1 uploads. State is bounded: at most `maxPerAddress` uploads per source IP
 * address, each at most `maxBytes`, dropped after `idleMs` without a block. Blocks must come in
 * order (a client sends the next block after the 2.31 of the previous one, RFC 7959 §2.5).
 */
export class Transfers {
  private readonly transfers = new Map<string, Transfer>();
  private readonly perAddress: PerAddressCount;

  constructor(private readonly limits: { maxPerAddress: number; maxBytes: number; idleMs: number }) {
    this.perAddress = new PerAddressCount(limits.maxPerAddress);
  }

  get size(): number {
    return this.transfers.size;
  }

  /** Whether `address` may start one more upload. */
  canStart(address: string): boolean {
    return this.perAddress.canAdd(address);
  }

  has(key: string): boolean {
    return this.transfers.has(key);
  }

  /** Takes block `block` of the upload `key` (endpoint and request URI). Block 0 (re)starts it. */
  add(key: string, address: string, block: BlockOption, payload: Buffer, contentFormat: number | undefined, now: number): BlockResult {
    const size = blockSize(block.szx);
    let t = this.transfers.get(key);
    if (block.num === 0) {
      if (t) this.drop(key);
      t = { address, chunks: [], received: 0, contentFormat, lastSeen: now };
      this.transfers.set(key, t);
      this.perAddress.add(address);
    }
    if (!t) return { kind: 'incomplete', why: `block ${block.num} of an upload that did not start with block 0 (or expired)` };
    // RFC 7959 §2.3: the offset is num × size; a client may shrink the size between blocks
    if (block.num * size !== t.received) {
      this.drop(key);
      return { kind: 'incomplete', why: `block ${block.num} of ${size} bytes starts at byte ${block.num * size}, but ${t.received} bytes came so far` };
    }
    // RFC 7959 §2.3: every block but the last carries exactly the block size
    if (block.more && payload.length !== size) {
      this.drop(key);
      return { kind: 'incomplete', why: `block ${block.num} holds ${payload.length} bytes, not ${size}` };
    }
    if (t.received + payload.length > this.limits.maxBytes) {
      this.drop(key);
      return { kind: 'too_large', received: t.received + payload.length };
    }
    t.chunks.push(payload);
    t.received += payload.length;
    t.lastSeen = now;
    if (block.more) return { kind: 'continue' };
    this.drop(key);
    return { kind: 'complete', payload: Buffer.concat(t.chunks, t.received), contentFormat: t.contentFormat };
  }

  drop(key: string): void {
    const t = this.transfers.get(key);
    if (!t) return;
    this.transfers.delete(key);
    this.perAddress.remove(t.address);
  }

  /** Drops uploads idle for longer than the limit. */
  sweep(now: number): void {
    for (const [key, t] of this.transfers) if (now - t.lastSeen > this.limits.idleMs) this.drop(key);
  }

  clear(): void {
    this.transfers.clear();
    this.perAddress.clear();
  }
}
