import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../errors.js';
import { registrationsFromCsv } from './identity.js';

const pem = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';
const hex = 'AB'.repeat(32);

test('a registration CSV file gives one registration a row: a PEM quoted over several lines, a fingerprint, ids split on ;', () => {
  const csv = `\uFEFFSerial,model,public_key,channel_ids,group_ids\r\nSN-1,meter,"${pem}",c1; c2,g1\r\nSN-2,,${hex},,\r\nSN-3,,,,\r\n\r\n`;
  assert.deepEqual(registrationsFromCsv(csv), [
    { serial: 'SN-1', model: 'meter', public_key: pem, channel_ids: ['c1', 'c2'], group_ids: ['g1'] },
    { serial: 'SN-2', public_key: hex.toLowerCase() },
    { serial: 'SN-3' },
  ]);
  // openssl's colon-separated fingerprint is the same key
  const colons = hex.match(/../g)!.join(':');
  assert.equal(registrationsFromCsv(`serial,public_key\nSN-4,${colons}\n`)[0]!.public_key, hex.toLowerCase());
});

test('a registration CSV file that cannot be read as registrations is a usage error naming the row', () => {
  const refused = (csv: string, message: RegExp) => assert.throws(() => registrationsFromCsv(csv), (e: unknown) => e instanceof UsageError && message.test(e.message));
  refused('serial\n', /holds no registration/);
  refused('name\nx\n', /the columns are serial, model, public_key, channel_ids, group_ids \(serial required\), not name/);
  refused('serial,model\nSN-1,a\n,b\n', /^row 2: no serial/);
  refused('serial\nSN-1\nSN-2\nSN-1\n', /^row 3: serial SN-1 is on row 1 too/);
  refused('serial,public_key\nSN-1,not-a-key\n', /^row 1: public_key is a PEM public key or the hex SHA-256 of one/);
  refused('serial,model\n"SN-1,a\n', /the file is not CSV/);
});
