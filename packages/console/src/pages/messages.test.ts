// How the data pages show payloads and read times: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesOf, hexOf, localInput, rfc3339, storedKindOf, textOf } from './messages.ts';

test('a payload is text when it is UTF-8 without control characters, else it is shown in hex', () => {
  assert.equal(textOf(new TextEncoder().encode('{"a":1}\n\tb')), '{"a":1}\n\tb');
  assert.equal(textOf(new TextEncoder().encode('température')), 'température');
  assert.equal(textOf(Uint8Array.from([0xff, 0xfe, 0x41])), undefined, 'not UTF-8');
  assert.equal(textOf(Uint8Array.from([0x61, 0x00, 0x62])), undefined, 'a NUL byte');
  assert.equal(textOf(bytesOf(btoa('hi'))), 'hi');
});

test('a hex dump has 16 bytes a line after their offset, and stops after 4 KB with the rest counted', () => {
  const bytes = Uint8Array.from({ length: 18 }, (_, i) => i);
  assert.equal(hexOf(bytes), '000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n000010  10 11');
  const big = hexOf(new Uint8Array(5000)).split('\n');
  assert.equal(big.length, 4096 / 16 + 1);
  assert.equal(big.at(-1), '… 904 more bytes');
  assert.equal(hexOf(new Uint8Array(0)), '');
});

test("a datetime-local value is sent as RFC 3339 in UTC; an empty one is no bound", () => {
  assert.equal(rfc3339('2026-12-03T08:10:00'), new Date(2026, 11, 3, 8, 10, 0).toISOString());
  assert.equal(rfc3339(''), undefined);
  assert.equal(rfc3339('not a time'), undefined);
  assert.equal(localInput(rfc3339('2026-12-03T08:10:05')!), '2026-12-03T08:10:05', 'and back, for the field of a view in the address');
});

test("a channel's messages are stored as its content type says", () => {
  assert.equal(storedKindOf('application/senml+json'), 'senml');
  assert.equal(storedKindOf('application/json'), 'json');
  assert.equal(storedKindOf('application/octet-stream'), 'binary');
});
