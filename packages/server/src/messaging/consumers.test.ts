// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Consumers, type Consumer } from './consumers.js';

function recording(log: string[], name: string, fail?: 'start' | 'stop'): Consumer {
  return {
    start: async () => {
      if (fail === 'start') throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    stop: async () => {
      log.push(`stop ${name}`);
      if (fail === 'stop') throw new Error(`${name} cannot stop`);
    },
  };
}

test('the durable list is derived from the declarations, in order; a name is declared once', () => {
  const c = new Consumers().declare('writer').declare('twins');
  assert.deepEqual(c.names, ['writer', 'twins']);
  assert.throws(() => c.declare('writer'), /declared twice/);
});

test('only a declared consumer can be attached, and only once', () => {
  const c = new Consumers().declare('writer');
  assert.throws(() => c.attach('rules', recording([], 'rules')), /not declared before the bus was made/);
  c.attach('writer', recording([], 'writer'));
  assert.throws(() => c.attach('writer', recording([], 'writer')), /attached twice/);
});

test('consumers start together in order and stop together in reverse', async () => {
  const log: string[] = [];
  const c = new Consumers().declare('a').declare('b');
  c.attach('a', recording(log, 'a'));
  c.attach('b', recording(log, 'b'));
  await c.start();
  await c.stop();
  await c.stop(); // a second stop is nothing
  assert.deepEqual(log, ['start a', 'start b', 'stop b', 'stop a']);
});

test('a consumer that never started is stopped too (it may hold a worker thread or a connection)', async () => {
  const log: string[] = [];
  const c = new Consumers().declare('a');
  c.attach('a', recording(log, 'a'));
  await c.stop();
  assert.deepEqual(log, ['stop a']);
});

test('a declared consumer with no implementation is refused at start, before any starts', async () => {
  const log: string[] = [];
  const c = new Consumers().declare('a').declare('b');
  c.attach('a', recording(log, 'a'));
  await assert.rejects(c.start(), /declared but not attached: b/);
  assert.deepEqual(log, []);
});

test('when one fails to start, all are stopped again; a failing stop does not keep the others running', async () => {
  const log: string[] = [];
  const c = new Consumers().declare('a').declare('b').declare('c');
  c.attach('a', recording(log, 'a', 'stop'));
  c.attach('b', recording(log, 'b'));
  c.attach('c', recording(log, 'c', 'start'));
  await assert.rejects(c.start(), /c cannot start/);
  assert.deepEqual(log, ['start a', 'start b', 'stop c', 'stop b', 'stop a']);
});
