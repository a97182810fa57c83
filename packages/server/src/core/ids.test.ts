// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUuid, randomToken, uuidv7 } from './ids.js';

describe('uuidv7', () => {
  test('is a lower-case RFC 9562 UUID of version 7', () => {
    for (let i = 0; i < 100; i++) {
      const id = uuidv7();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(isUuid(id));
    }
  });

  test('starts with the 48-bit Unix time in milliseconds', () => {
    const now = Date.UTC(2026, 0, 1, 12, 30, 45, 678);
    const id = uuidv7(now);
    assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), now);
    assert.equal(uuidv7(0).slice(0, 13), '00000000-0000');
    assert.equal(uuidv7(2 ** 48 - 1).slice(0, 13), 'ffffffff-ffff');
  });

  test('ids made later sort after ids made earlier', () => {
    const start = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 1000 }, (_, i) => uuidv7(start + i * 7));
    assert.deepEqual([...ids].sort(), ids);
  });

  test('ids made in the same millisecond differ', () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 1000 }, () => uuidv7(now)));
    assert.equal(ids.size, 1000);
  });
});

describe('randomToken', () => {
  test('32 bytes give 43 base64url characters', () => {
    const t = randomToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(t, 'base64url').length, 32);
    assert.match(randomToken(16), /^[A-Za-z0-9_-]{22}$/);
  });

  test('tokens do not repeat', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken()));
    assert.equal(tokens.size, 1000);
  });
});

describe('isUuid', () => {
  test('rejects what is not a UUID', () => {
    for (const s of ['', 'abc', '0190a0a0-0000-7000-8000-00000000000', '0190a0a0-0000-7000-8000-00000000000g', "' OR 1=1 --"]) assert.equal(isUuid(s), false, s);
  });
});
