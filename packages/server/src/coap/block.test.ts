// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transfers } from './block.js';

test('an upload frees its per-address slot when it completes, fails or goes idle', () => {
  const transfers = new Transfers({ maxPerAddress: 1, maxBytes: 1000, idleMs: 100 });
  const start = (key: string, now = 0) => transfers.add(key, '10.0.0.1', { num: 0, more: true, szx: 0 }, Buffer.alloc(16), undefined, now);
  const ends: [string, () => void][] = [
    ['completes', () => assert.equal(transfers.add('a', '10.0.0.1', { num: 1, more: false, szx: 0 }, Buffer.alloc(3), undefined, 0).kind, 'complete')],
    ['is out of order', () => assert.equal(transfers.add('a', '10.0.0.1', { num: 5, more: false, szx: 0 }, Buffer.alloc(3), undefined, 0).kind, 'incomplete')],
    ['grows too large', () => assert.equal(transfers.add('a', '10.0.0.1', { num: 1, more: false, szx: 0 }, Buffer.alloc(2000), undefined, 0).kind, 'too_large')],
    ['goes idle', () => transfers.sweep(101)],
  ];
  for (const [how, end] of ends) {
    assert.equal(start('a').kind, 'continue');
    assert.equal(transfers.canStart('10.0.0.1'), false, `one upload per address (${how})`);
    assert.equal(transfers.canStart('10.0.0.2'), true);
    end();
    assert.equal(transfers.size, 0);
    assert.equal(transfers.canStart('10.0.0.1'), true, `the slot is free once the upload ${how}`);
  }
  // block 0 again restarts the same upload: it still holds one slot
  start('b');
  start('b');
  transfers.drop('b');
  assert.equal(transfers.canStart('10.0.0.1'), true);
});
