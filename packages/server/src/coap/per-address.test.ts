// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerAddressCount } from './per-address.js';

test('each address is held to the limit on its own, and a freed slot can be taken again', () => {
  const count = new PerAddressCount(2);
  count.add('10.0.0.1');
  count.add('10.0.0.1');
  assert.equal(count.canAdd('10.0.0.1'), false);
  assert.equal(count.canAdd('10.0.0.2'), true, 'another address has its own count');
  count.remove('10.0.0.1');
  assert.equal(count.canAdd('10.0.0.1'), true);
  count.clear();
  count.add('10.0.0.1');
  assert.equal(count.canAdd('10.0.0.1'), true, 'clear forgets every count');
});

test('removing what an address never held does not leave it a credit', () => {
  const count = new PerAddressCount(1);
  count.remove('10.0.0.3');
  count.add('10.0.0.3');
  assert.equal(count.canAdd('10.0.0.3'), false);
});
