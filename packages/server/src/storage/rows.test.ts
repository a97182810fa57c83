// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../core/ids.js';
import type { Envelope } from '../messaging/envelope.js';
import { rememberParsedPayload } from '../messaging/parsed.js';
import { normalisePayload } from '../messaging/payload/index.js';
import { toRows } from './rows.js';

const envelope = (): Envelope => {
  const receivedAt = Date.UTC(2026, 0, 1);
  return { id: uuidv7(receivedAt), org: 'o', channel: 'c', subtopic: '', publisher: 'p', protocol: 'http', contentType: 'application/senml+json', payload: Buffer.from('[{"n":"x","v":1}]'), receivedAt };
};

test('rows reuse the parse the messaging service remembered, and parse when there is none', () => {
  const env = envelope();
  assert.deepEqual(toRows([env], 1024).records.map((r) => [r.name, r.value]), [['x', 1]]);
  const parsed = normalisePayload(env.contentType, env.payload, env.receivedAt / 1000);
  assert.equal(parsed.kind, 'senml');
  if (parsed.kind === 'senml') parsed.records[0]!.value = 2; // tell the remembered result from a fresh parse
  rememberParsedPayload(env, parsed);
  assert.deepEqual(toRows([env], 1024).records.map((r) => [r.name, r.value]), [['x', 2]]);
  // what crosses NATS is the envelope's own fields: the parse is not among them
  assert.deepEqual(Object.keys(env).sort(), ['channel', 'contentType', 'id', 'org', 'payload', 'protocol', 'publisher', 'receivedAt', 'subtopic']);
});
