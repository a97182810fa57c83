// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { truncateUtf8 } from './text.js';

test('text within the limit is kept as it is', () => {
  assert.equal(truncateUtf8('short', 123), 'short');
  assert.equal(truncateUtf8('é'.repeat(61), 123), 'é'.repeat(61)); // 122 bytes
});

test('a cut falls between characters, whatever their width, and never passes the limit', () => {
  for (const ch of ['a', 'é', '€', '😀']) {
    for (let limit = 4; limit <= 130; limit++) {
      const out = truncateUtf8(ch.repeat(200), limit);
      assert.ok(Buffer.byteLength(out) <= limit, `${ch} at ${limit}: ${Buffer.byteLength(out)} bytes`);
      assert.ok(out.endsWith('…'));
      assert.equal(out.slice(0, -1), ch.repeat([...out.slice(0, -1)].length), `${ch} at ${limit}: no character cut in two`);
      assert.ok(!out.includes('\ufffd'));
    }
  }
});
