// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionBudget, openFileLimit } from './descriptors.js';

test('the soft open-files limit is read from /proc/self/limits; unlimited or unreadable is unknown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-limits-'));
  const file = (soft: string) => {
    const path = join(dir, `limits-${soft}`);
    writeFileSync(path, `Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            ${soft}                524288               files\n`);
    return path;
  };
  assert.equal(openFileLimit(file('20000')), 20000);
  assert.equal(openFileLimit(file('unlimited')), undefined);
  assert.equal(openFileLimit(join(dir, 'missing')), undefined);
  if (process.platform === 'linux') assert.ok((openFileLimit() ?? 0) > 0, 'this process has a limit');
});

test('MQTT gets what the descriptors allow after the rest of the platform and the unauthenticated connections', () => {
  // the default (0) under a 20,000 limit: 4,000 kept, 1,000 waiting for CONNECT
  assert.deepEqual(connectionBudget(0, 1000, 20_000), { maxConnections: 15_000, reserved: 4000, lowered: false });
  // a configured limit above that is lowered
  assert.deepEqual(connectionBudget(100_000, 1000, 20_000), { maxConnections: 15_000, reserved: 4000, lowered: true });
  // a configured limit that fits stands
  assert.deepEqual(connectionBudget(5000, 1000, 20_000), { maxConnections: 5000, reserved: 4000, lowered: false });
  // a small limit keeps at least 256 for the rest
  assert.deepEqual(connectionBudget(100_000, 100, 1024), { maxConnections: 668, reserved: 256, lowered: true });
  // a very large one keeps at most 10,000
  assert.equal(connectionBudget(1_000_000, 1000, 1_048_576).reserved, 10_000);
  assert.equal(connectionBudget(1_000_000, 1000, 1_048_576).maxConnections, 1_000_000);
  // unknown (not Linux): the configured limit, or 100,000
  assert.deepEqual(connectionBudget(5000, 1000, undefined), { maxConnections: 5000, reserved: 0, lowered: false });
  assert.deepEqual(connectionBudget(0, 1000, undefined), { maxConnections: 100_000, reserved: 0, lowered: false });
});
