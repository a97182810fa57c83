import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';

/** Sends `request` as it is on a new connection; resolves with all the server wrote once it closed the connection. */
function raw(port: number, request: string, timeoutMs = 3000): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer: false });
    }, timeoutMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByServer: true });
    });
    socket.once('error', reject);
    socket.write(request);
  });
}

const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

describe('refusals before a route is reached', () => {
  let t: TestPlatform;
  let port: number;
  before(async () => {
    t = await startTestPlatform();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as AddressInfo).port;
  });
  after(() => t.close());

  test('a path that cannot be decoded gets a problem+json 400', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/channels/x/messages/%ff', payload: 'x' });
    assert.equal(res.statusCode, 400);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json().code, 'request.invalid');
  });

  test('a WebSocket upgrade to a path that cannot be decoded is refused with a problem, and its connection closed', async () => {
    const { text, closedByServer } = await raw(port, `GET /ws/channels/%ff/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n${upgrade}\r\n`);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /content-type: application\/problem\+json/i);
    assert.ok(closedByServer, 'the server closed the connection of the refused upgrade');
  });

  test('headers over the size limit get a problem+json 431 and the connection closed', async () => {
    const { text, closedByServer } = await raw(port, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 431 /);
    assert.match(text, /Content-Type: application\/problem\+json/);
    assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).status, 431);
    assert.ok(closedByServer);
  });

  test('a request that is not HTTP gets a problem+json 400 and the connection closed', async () => {
    const { text, closedByServer } = await raw(port, 'HELLO THERE\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /Content-Type: application\/problem\+json/);
    assert.ok(closedByServer);
  });
});
