// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, requestChildLogger } from './logger.js';

function captured(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger(level, sink), lines };
}

describe('request child loggers', () => {
  test('above info, lines below the level are dropped and the rest carry the bindings, redacted as ever', () => {
    const { log, lines } = captured('info');
    let made = 0;
    const child = requestChildLogger(new Proxy(log, { get: (target, key) => (key === 'child' ? (...a: Parameters<typeof log.child>) => (made++, target.child(...a)) : Reflect.get(target, key)) }), { reqId: 'r-1' }, { level: 'warn' });
    child.info('not written');
    child.debug('not written');
    assert.equal(made, 0, 'no pino child is made while nothing is written');
    child.warn({ password: 'hunter2' }, 'written');
    assert.equal(made, 1);
    child.child({ part: 'ws' }).error('also written');
    assert.deepEqual(lines.map((l) => l.msg), ['written', 'also written']);
    assert.equal(lines[0]!.reqId, 'r-1');
    assert.equal(lines[0]!.password, '[redacted]');
    assert.equal(lines[1]!.reqId, 'r-1');
    assert.equal(lines[1]!.part, 'ws');
    assert.equal(child.level, 'warn');
  });

  test('at info and below, it is an ordinary pino child', () => {
    const { log, lines } = captured('debug');
    const child = requestChildLogger(log, { reqId: 'r-2' }, {});
    child.debug('written');
    child.trace('not written');
    assert.deepEqual(lines.map((l) => [l.msg, l.reqId]), [['written', 'r-2']]);
    assert.equal(typeof (child as unknown as { bindings(): unknown }).bindings, 'function');
  });

  test('a process at warn takes the lazy child for every request', () => {
    const { log, lines } = captured('warn');
    const child = requestChildLogger(log, { reqId: 'r-3' }, {});
    child.info('not written');
    child.fatal('written');
    assert.deepEqual(lines.map((l) => [l.msg, l.reqId]), [['written', 'r-3']]);
  });
});
