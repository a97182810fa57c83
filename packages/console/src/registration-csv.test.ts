// The console's reading of registration CSV files: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { publicKeyOf, registrationsFromCsv } from './registration-csv.ts';

const fingerprint = 'ab'.repeat(32);
const pem = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';

test('a registration CSV file gives one registration a line: a quoted PEM spans lines, ids split on ;, columns in any order and case', () => {
  const csv = `\uFEFFModel,SERIAL,public_key,channel_ids,group_ids\r\nmeter,SN-1,"${pem}",c1; c2,g1\r\n,SN-2,${fingerprint.replace(/(..)(?!$)/g, '$1:').toUpperCase()},,\r\n`;
  assert.deepEqual(registrationsFromCsv(csv), [
    { line: 2, serial: 'SN-1', registration: { serial: 'SN-1', model: 'meter', public_key: `${pem}\n`, channel_ids: ['c1', 'c2'], group_ids: ['g1'] } },
    { line: 5, serial: 'SN-2', registration: { serial: 'SN-2', public_key: fingerprint } },
  ]);
});

test('every bad row is kept with its line and what is wrong: no serial, a space, a serial twice, a key that is neither PEM nor a fingerprint', () => {
  const rows = registrationsFromCsv('serial,public_key\nA-1,\n,\nA 2,\nA-1,\nA-3,not a key\nA-4,,extra\n');
  assert.deepEqual(
    rows.map((r) => [r.line, r.error ?? 'ok']),
    [
      [2, 'ok'],
      [3, 'no serial'],
      [4, 'the serial is 1 to 128 printable characters without spaces'],
      [5, 'the serial is on line 2 too'],
      [6, 'public_key is a PEM public key (BEGIN PUBLIC KEY) or the hex SHA-256 of one'],
      [7, '3 fields, the header names 2'],
    ],
  );
});

test('a file with unknown columns, without serial, or without rows is refused as a whole', () => {
  assert.throws(() => registrationsFromCsv('serial,colour\nA,red\n'), /not colour/);
  assert.throws(() => registrationsFromCsv('model\nm\n'), /serial required/);
  assert.throws(() => registrationsFromCsv('serial\n'), /holds no registration/);
});

test('a typed public key is a fingerprint, a PEM, nothing, or refused', () => {
  assert.deepEqual(publicKeyOf(` ${fingerprint.toUpperCase()} `), { key: fingerprint });
  assert.deepEqual(publicKeyOf(`${pem}\n`), { key: `${pem}\n` });
  assert.deepEqual(publicKeyOf('  '), {});
  assert.ok(publicKeyOf('-----BEGIN CERTIFICATE-----').error);
});
