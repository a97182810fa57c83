// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../messaging/memory-bus.js';
import { noInvalidation } from './decision.js';
import { broadcastInvalidation, concerns, type AccessChange } from './invalidation.js';

describe('access changes', () => {
  test('every process on the bus hears each change at once, and again after the settle delay; nothing after stop', async () => {
    const bus = new MemoryBus();
    const here = broadcastInvalidation(noInvalidation, bus, { settleMs: 50 });
    const there = broadcastInvalidation(noInvalidation, bus, { settleMs: 50 });
    const heard: { where: string; change: AccessChange }[] = [];
    here.onChange((change) => heard.push({ where: 'here', change }));
    const stop = there.onChange((change) => heard.push({ where: 'there', change }));
    here.invalidateConnections(['d1', 'd2']);
    assert.deepEqual(heard.map((h) => h.where).sort(), ['here', 'there']);
    const change = heard[0]!.change;
    assert.ok(concerns(change, 'd2', 'any channel'));
    assert.ok(!concerns(change, 'd3', 'any channel'));
    assert.ok(!concerns(change, undefined, 'any channel'), "a user's session is not a device's");
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(heard.length, 4, 'told again, for sessions that were being opened meanwhile');
    stop();
    here.invalidateChannel('c1');
    assert.deepEqual(heard.slice(4).map((h) => [h.where, h.change]), [['here', { kind: 'channel', channelId: 'c1' }]]);
    here.stop();
    there.stop();
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(heard.length, 5, 'nothing is told once stopped');
    await bus.close();
  });
});
