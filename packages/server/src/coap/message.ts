import { generate, parse, type ParsedPacket } from 'coap-packet';

/**
 * CoAP messages (RFC 7252 §3) on top of the `coap-packet` codec of the node-coap project: what the
 * adapter reads from a parsed packet and the few messages it writes.
 */

export type Packet = ParsedPacket;

export interface Peer {
  address: string;
  port: number;
}

export function peerKey(peer: Peer): string {
  return `${peer.address}|${peer.port}`;
}

/** Option numbers (RFC 7252 §5.10, RFC 7641 §2, RFC 7959 §2.1, RFC 7967 §2). */
export const option = {
  ifMatch: 1,
  uriHost: 3,
  etag: 4,
  ifNoneMatch: 5,
  observe: 6,
  uriPort: 7,
  uriPath: 11,
  contentFormat: 12,
  maxAge: 14,
  uriQuery: 15,
  accept: 17,
  block2: 23,
  block1: 27,
  size2: 28,
  proxyUri: 35,
  proxyScheme: 39,
  size1: 60,
  noResponse: 258,
} as const;

/** The names coap-packet gives option numbers; numbers it does not know come as decimal strings. */
const numberOfName: Record<string, number> = {
  'If-Match': 1, 'Uri-Host': 3, ETag: 4, 'If-None-Match': 5, Observe: 6, 'Uri-Port': 7, 'Location-Path': 8, OSCORE: 9,
  'Uri-Path': 11, 'Content-Format': 12, 'Max-Age': 14, 'Uri-Query': 15, 'Hop-Limit': 16, Accept: 17, 'Q-Block1': 19,
  'Location-Query': 20, Block2: 23, Block1: 27, Size2: 28, 'Q-Block2': 31, 'Proxy-Uri': 35, 'Proxy-Scheme': 39, Size1: 60,
  'No-Response': 258, 'OCF-Accept-Content-Format-Version': 2049, 'OCF-Content-Format-Version': 2053,
};

export function optionNumber(name: string | number): number {
  return typeof name === 'number' ? name : (numberOfName[name] ?? Number(name));
}

/**
 * Critical options (odd numbers, RFC 7252 §5.4.1) this adapter understands besides those readOptions
 * reads itself (Uri-Path, Uri-Query, Observe, Block1, Block2); any other is refused with 4.02.
 */
const understood = new Set<number>([option.uriHost, option.uriPort, option.accept]);

/**
 * The options of a request that the endpoint acts on, read in one pass over the packet. Of an
 * option that is not repeatable the first occurrence counts; integers are read as in RFC 7252 §3.2.
 */
export interface RequestOptions {
  /** Uri-Path segments in order (RFC 7252 §5.10.1: one option per segment). */
  uriPath: string[];
  /** Uri-Query arguments in order (RFC 7252 §5.10.1: one option per argument). */
  uriQuery: string[];
  observe: number | undefined;
  contentFormat: number | undefined;
  /** Raw Block1 and Block2 values, parsed where they are used (RFC 7959 §2.2): a malformed Block1 is refused, a malformed Block2 ignored. */
  block1: Buffer | undefined;
  block2: Buffer | undefined;
  size1: number | undefined;
  /** Proxy-Uri or Proxy-Scheme came (RFC 7252 §5.10.2). */
  proxy: boolean;
  /** The first critical option the adapter does not understand, if any (RFC 7252 §5.4.1). */
  unknownCritical: number | undefined;
}

export function readOptions(p: Packet): RequestOptions {
  const r: RequestOptions = { uriPath: [], uriQuery: [], observe: undefined, contentFormat: undefined, block1: undefined, block2: undefined, size1: undefined, proxy: false, unknownCritical: undefined };
  for (const o of p.options) {
    const n = optionNumber(o.name);
    switch (n) {
      case option.uriPath:
        r.uriPath.push(o.value.toString('utf8'));
        break;
      case option.uriQuery:
        r.uriQuery.push(o.value.toString('utf8'));
        break;
      case option.observe:
        r.observe ??= readUint(o.value);
        break;
      case option.contentFormat:
        r.contentFormat ??= readUint(o.value);
        break;
      // RFC 7252 §5.4.5: an occurrence past those an option is defined for counts as unrecognised;
      // of the elective options the first counts, a repeated critical one is refused (4.02)
      case option.block1:
        if (r.block1 === undefined) r.block1 = o.value;
        else r.unknownCritical ??= n;
        break;
      case option.block2:
        if (r.block2 === undefined) r.block2 = o.value;
        else r.unknownCritical ??= n;
        break;
      case option.size1:
        r.size1 ??= readUint(o.value);
        break;
      case option.proxyUri:
      case option.proxyScheme:
        r.proxy = true;
        break;
      default:
        if (r.unknownCritical === undefined && n % 2 === 1 && !understood.has(n)) r.unknownCritical = n;
    }
  }
  return r;
}

/** An unsigned integer option value (RFC 7252 §3.2: big-endian, leading zero bytes omitted). */
export function readUint(value: Buffer): number {
  let n = 0;
  for (const byte of value) n = n * 256 + byte;
  return n;
}

export function uint(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

/** Parses a datagram; undefined when it is not a well-formed CoAP message. */
export function decode(datagram: Buffer): Packet | undefined {
  if (datagram.length < 4) return undefined;
  try {
    return parse(datagram);
  } catch {
    return undefined;
  }
}

/** Message ID of a datagram that is at least a CoAP header (RFC 7252 §3), to answer it with RST. */
export function headerOf(datagram: Buffer): { confirmable: boolean; messageId: number } | undefined {
  if (datagram.length < 4 || datagram[0]! >> 6 !== 1) return undefined;
  return { confirmable: ((datagram[0]! >> 4) & 3) === 0, messageId: datagram.readUInt16BE(2) };
}

export interface OutOption {
  name: number;
  value: Buffer;
}

/** Largest datagram the adapter writes: a 1024-byte block plus header, token and options (RFC 7252 §4.6). */
export const maxDatagram = 1280;

export function encode(msg: { code: string; messageId: number; token?: Buffer; confirmable?: boolean; ack?: boolean; reset?: boolean; options?: OutOption[]; payload?: Buffer }): Buffer {
  return generate(
    {
      code: msg.code,
      messageId: msg.messageId,
      token: msg.token ?? Buffer.alloc(0),
      confirmable: msg.confirmable ?? false,
      ack: msg.ack ?? false,
      reset: msg.reset ?? false,
      options: (msg.options ?? []).map((o) => ({ name: String(o.name), value: o.value })),
      payload: msg.payload ?? Buffer.alloc(0),
    },
    maxDatagram,
  );
}

/** RST for a message we cannot or will not process (RFC 7252 §4.2, §4.3). */
export function reset(messageId: number): Buffer {
  return encode({ code: '0.00', messageId, reset: true });
}

