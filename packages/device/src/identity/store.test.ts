// The key store's commits: a change of several files lands whole or not at all, whatever moment a
// crash stops it at.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityStore } from './store.js';

const parent = mkdtempSync(join(tmpdir(), 'fleetwire-store-'));
after(() => rmSync(parent, { recursive: true, force: true }));

const identity = { device_id: 'd', org_id: 'o', registration_id: 'r', serial: 'S', certificate_serial: '01', not_after: '2030-01-01T00:00:00.000Z', channel_ids: [], endpoints: {}, issued_at: '2026-01-01T00:00:00.000Z' };

test('a commit writes every file, the key 0600 in a 0700 folder, and leaves no temporary file', async () => {
  const dir = join(parent, 'whole');
  await new IdentityStore(dir).commit({ 'device.key': 'KEY', 'device.pem': 'CERT', 'identity.json': JSON.stringify(identity) });
  assert.deepEqual(readdirSync(dir).sort(), ['device.key', 'device.pem', 'identity.json']);
  assert.equal(statSync(join(dir, 'device.key')).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const read = await new IdentityStore(dir).read();
  assert.equal(read.key, 'KEY');
  assert.equal(read.certificate, 'CERT');
});

test('a commit a crash stopped after its commit file is finished when the store is opened', async () => {
  const dir = join(parent, 'finished');
  await new IdentityStore(dir).commit({ 'device.key': 'OLD KEY', 'device.pem': 'OLD CERT', 'identity.json': JSON.stringify(identity) });
  // the crash: both new files and the commit file written, only the key renamed
  writeFileSync(join(dir, 'device.key'), 'NEW KEY');
  writeFileSync(join(dir, 'device.pem.next'), 'NEW CERT');
  writeFileSync(join(dir, 'commit'), JSON.stringify(['device.key', 'device.pem']));
  const read = await new IdentityStore(dir).read();
  assert.deepEqual([read.key, read.certificate], ['NEW KEY', 'NEW CERT']);
  assert.deepEqual(readdirSync(dir).sort(), ['device.key', 'device.pem', 'identity.json']);
});

test('a commit a crash stopped before its commit file is dropped: the old files stay together', async () => {
  const dir = join(parent, 'dropped');
  await new IdentityStore(dir).commit({ 'device.key': 'OLD KEY', 'device.pem': 'OLD CERT', 'identity.json': JSON.stringify(identity) });
  writeFileSync(join(dir, 'device.key.next'), 'NEW KEY');
  writeFileSync(join(dir, 'device.pem.next'), 'NEW CERT');
  const read = await new IdentityStore(dir).read();
  assert.deepEqual([read.key, read.certificate], ['OLD KEY', 'OLD CERT']);
  assert.deepEqual(readdirSync(dir).sort(), ['device.key', 'device.pem', 'identity.json']);
});

test('a store without a certificate is not enrolled', async () => {
  await assert.rejects(new IdentityStore(join(parent, 'empty')).read(), { code: 'not_enrolled' });
});
