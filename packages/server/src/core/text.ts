/**
 * `text` cut to at most `maxBytes` bytes of UTF-8, at a character boundary, ending in `…` when it
 * was cut. Cutting the bytes anywhere and decoding them would turn a character cut in two into
 * U+FFFD (3 bytes) and could end past the limit: a WebSocket close reason must fit in 123 bytes
 * (RFC 6455 §5.5), and `ws` throws on a longer one.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text);
  let end = Math.max(0, maxBytes - 3); // room for '…', 3 bytes
  // back to the first byte of the character the cut falls in (continuation bytes are 10xxxxxx)
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + '…';
}
