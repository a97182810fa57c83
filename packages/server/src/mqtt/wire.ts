// Encoders for the packets the broker sends most: PUBLISH without properties and the success
// acknowledgements. Byte for byte what mqtt-packet's generate() makes (wire.test.ts checks it),
// without its generic machinery; every other packet goes through mqtt-packet.

const ackType = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

export type AckCommand = keyof typeof ackType;

/**
 * PUBACK, PUBREC, PUBREL or PUBCOMP with success and no properties: four bytes at both protocol
 * levels (MQTT 5 §3.4.2.1: reason code and properties may be left out when the reason is 0x00).
 */
export function encodeAck(cmd: AckCommand, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = ackType[cmd];
  b[1] = 2;
  b[2] = messageId >> 8;
  b[3] = messageId & 0xff;
  return b;
}

function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** PUBLISH without properties (§3.3): MQTT 3.1.1, or MQTT 5 with a zero property length. */
export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, dup: boolean, messageId: number | undefined, v5: boolean): Buffer {
  const topicLength = Buffer.byteLength(topic);
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length;
  const b = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  let i = 0;
  b[i++] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  let r = remaining;
  do {
    let byte = r % 128;
    r = Math.floor(r / 128);
    if (r > 0) byte |= 0x80;
    b[i++] = byte;
  } while (r > 0);
  b[i++] = topicLength >> 8;
  b[i++] = topicLength & 0xff;
  i += b.write(topic, i, 'utf8');
  if (qos > 0) {
    b[i++] = messageId! >> 8;
    b[i++] = messageId! & 0xff;
  }
  if (v5) b[i++] = 0;
  payload.copy(b, i);
  return b;
}
