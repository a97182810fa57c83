// Reading packets off a connection's byte stream. Each connection only finds where its packets
// begin and end (the fixed header, §2.1) and keeps the bytes of the one packet it has not received
// whole; a whole packet is decoded by one mqtt-packet parser shared by every connection. A parser
// per connection held about 900 bytes (the parser, its packet, its buffer list, its listeners)
// while the connection sat idle, which is what most of a fleet's connections do.
import mqtt, { type Packet, type Parser } from 'mqtt-packet';
import { BufferList } from 'bl';
import type { ProtocolVersion } from './types.js';

/** Remaining Length is not complete in the bytes at hand (readRemainingLength). */
export const lengthIncomplete = -1;
/** Remaining Length runs past its four bytes, or takes more bytes than its value needs (§1.5.5, §2.1.4): a malformed packet. */
export const lengthMalformed = -2;

/**
 * The Remaining Length of the packet whose fixed header starts at `at` (§2.1.4), or
 * lengthIncomplete / lengthMalformed; `headerSize(…)` then says how many bytes the fixed header took.
 */
export function readRemainingLength(buf: Buffer, at: number): number {
  let length = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (at + i >= buf.length) return lengthIncomplete;
    const byte = buf[at + i]!;
    length += (byte & 0x7f) * multiplier;
    // a last byte of 0 after the first is a longer encoding than the value needs [MQTT-1.5.5-1]:
    // where the packet ends would then not follow from its value (headerSize)
    if ((byte & 0x80) === 0) return i > 1 && byte === 0 ? lengthMalformed : length;
    multiplier *= 128;
  }
  return lengthMalformed;
}

/** Bytes of a fixed header whose Remaining Length is `length`: the type byte and 1 to 4 length bytes. */
export function headerSize(length: number): number {
  return 1 + (length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4);
}

/** The protocol level of a CONNECT whose body starts at `bodyAt`, once its protocol name is in (§3.1.2.2); undefined for other packets or before. */
export function connectLevel(buf: Buffer, at: number, bodyAt: number): number | undefined {
  if (buf[at]! >> 4 !== 1 || buf.length < bodyAt + 2) return undefined;
  const levelAt = bodyAt + 2 + buf.readUInt16BE(bodyAt); // after the length-prefixed protocol name
  return buf.length > levelAt ? buf[levelAt] : undefined;
}

// What the shared parser last emitted: it emits synchronously, inside parse()
let parsed: Packet | undefined;
let failed: Error | undefined;
let shared: Parser | undefined;
/** The parser's settings per protocol level: it decodes packets after CONNECT by the level (and a CONNECT overwrites them). */
const settings = { 3: { protocolVersion: 3 }, 4: { protocolVersion: 4 }, 5: { protocolVersion: 5 } } as const;

function sharedParser(): Parser {
  if (shared) return shared;
  const p = mqtt.parser();
  // the parser keeps bytes in a bl BufferListStream, a whole Duplex stream of which it uses only
  // the list's methods: a BufferList has them (same package, same version as mqtt-packet's)
  (p as unknown as { _list: unknown })._list = new BufferList();
  p.on('packet', (packet: Packet) => (parsed = packet));
  p.on('error', (e: Error) => (failed = e));
  return (shared = p);
}

/**
 * Decodes one whole packet (fixed header included) at a connection's protocol level; an Error for
 * a malformed one.
 */
export function decodePacket(bytes: Buffer, protocolVersion: ProtocolVersion): Packet | Error {
  const p = sharedParser();
  (p as unknown as { settings: unknown }).settings = settings[protocolVersion];
  parsed = undefined;
  failed = undefined;
  const left = p.parse(bytes);
  const packet = parsed;
  const error = failed;
  parsed = failed = undefined;
  if (left !== 0) shared = undefined; // not expected of a whole packet: no connection's bytes may reach another's packet
  if (error || !packet) {
    // whatever state it was left in, the next packet starts on a fresh parser
    shared = undefined;
    return error ?? new Error('Packet too short');
  }
  return packet;
}
