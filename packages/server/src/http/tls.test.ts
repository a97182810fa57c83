import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { rmSync } from 'node:fs';
import { startTestPlatform } from '../../test/helpers/platform.js';
import { selfSignedCertificate } from '../../test/helpers/tls.js';

test('with a certificate and key configured the HTTP listener serves HTTPS only', async () => {
  const tls = selfSignedCertificate();
  const t = await startTestPlatform({ httpTlsCert: tls.certFile, httpTlsKey: tls.keyFile });
  try {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (t.app.server.address() as { port: number }).port;
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/health', ca: tls.cert }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(JSON.parse(body).status, 'ok');
    // plain HTTP on the same port does not get an answer from the API
    const plain = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 'refused');
    assert.notEqual(plain, 200);
  } finally {
    await t.close();
    rmSync(tls.dir, { recursive: true, force: true });
  }
});
