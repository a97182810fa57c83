// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Broker } from './broker.js';
import { openPolicy } from './open-policy.js';
import { TokenBuckets } from './rate.js';
import { listenTcp } from './transports/tcp.js';
import { createLogger } from '../core/logger.js';

test('a token bucket allows its burst, then its rate, per key', () => {
  const b = new TokenBuckets<string>(10, 20);
  const t0 = 1_000_000;
  let allowed = 0;
  for (let i = 0; i < 50; i++) if (b.take('a', t0)) allowed++;
  assert.equal(allowed, 20, 'the burst');
  assert.equal(b.take('b', t0), true, 'another key has its own bucket');
  assert.equal(b.take('a', t0 + 50), false, 'half a token after 50 ms');
  assert.equal(b.take('a', t0 + 100), true, 'one token after 100 ms at 10/s');
  assert.equal(b.take('a', t0 + 100), false);
});

test('rate 0 means unlimited; the key count stays bounded', () => {
  assert.equal(new TokenBuckets<string>(0, 0).take('x', 0), true);
  const b = new TokenBuckets<number>(1, 1, 100);
  for (let i = 0; i < 1000; i++) b.take(i, 5000);
  assert.ok(b.size <= 100, `${b.size} keys`);
});

test('connect-flood protection: connections from one address beyond the rate are closed unread', async () => {
  const broker = new Broker(openPolicy(undefined), createLogger('silent'), { maxConnectRate: 1 });
  const server = await listenTcp(broker, '127.0.0.1', 0);
  const port = (server.address() as AddressInfo).port;
  const outcome = (): Promise<'connack' | 'closed'> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        // CONNECT, MQTT 3.1.1, client id "f"
        s.write(Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0, 0, 1, 0x66]));
      });
      s.once('data', (d: Buffer) => {
        s.destroy();
        resolve(d[0] === 0x20 ? 'connack' : 'closed');
      });
      s.once('close', () => resolve('closed'));
      s.once('error', () => resolve('closed'));
    });
  const results = [await outcome(), await outcome(), await outcome()];
  assert.deepEqual(results, ['connack', 'connack', 'closed'], 'a burst of two, then refused');
  await broker.close();
  await new Promise((r) => server.close(r));
});
