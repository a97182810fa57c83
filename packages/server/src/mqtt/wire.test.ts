// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import mqttPacket from 'mqtt-packet';
import { encodeAck, encodePublish, type AckCommand } from './wire.js';

test('the fast PUBLISH encoder makes the bytes mqtt-packet makes, at both protocol levels', () => {
  const topics = ['a', 'sensors/é/temp', 'x'.repeat(300), 'channels/0195f0c8-0000-7000-8000-000000000001/messages/room/1'];
  const sizes = [0, 1, 16, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_200];
  for (const protocolVersion of [4, 5] as const) {
    for (const topic of topics) {
      for (const size of sizes) {
        for (const qos of [0, 1, 2] as const) {
          const payload = randomBytes(size);
          const retain = size % 2 === 0;
          const dup = qos > 0 && size % 3 === 0;
          const messageId = qos > 0 ? 1 + (size % 65_535) : undefined;
          const expected = mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain, dup, ...(messageId !== undefined ? { messageId } : {}) }, { protocolVersion });
          assert.ok(encodePublish(topic, payload, qos, retain, dup, messageId, protocolVersion === 5).equals(expected), `v${protocolVersion} ${topic.slice(0, 10)} ${size} B QoS ${qos}`);
        }
      }
    }
  }
});

test('the fast acknowledgements are the 4-byte success forms, which mqtt-packet parses back', () => {
  for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as AckCommand[]) {
    for (const id of [1, 255, 256, 65_535]) {
      assert.ok(encodeAck(cmd, id).equals(mqttPacket.generate({ cmd, messageId: id }, { protocolVersion: 4 })), `${cmd} ${id}`);
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      let parsed: mqttPacket.Packet | undefined;
      parser.on('packet', (p: mqttPacket.Packet) => (parsed = p));
      parser.parse(encodeAck(cmd, id));
      assert.equal(parsed?.cmd, cmd);
      assert.equal((parsed as { messageId?: number }).messageId, id);
      assert.equal((parsed as { reasonCode?: number }).reasonCode ?? 0, 0);
    }
  }
});
