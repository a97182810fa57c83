// The console's reading of device CSV files: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devicesFromCsv, parseCsv, toCsv } from './csv.ts';

test('a device CSV file gives one device a line: tags split on ;, metadata parsed, columns in any order and case', () => {
  const csv = '\uFEFFStatus,Name,metadata,tags\r\ndisabled,pump-1,"{""zone"":1}",a; b\r\n,pump-2,,\r\n\r\n';
  assert.deepEqual(devicesFromCsv(csv), [
    { line: 2, name: 'pump-1', device: { name: 'pump-1', tags: ['a', 'b'], metadata: { zone: 1 }, status: 'disabled' } },
    { line: 3, name: 'pump-2', device: { name: 'pump-2' } },
  ]);
});

test('every bad row is kept with its line and what is wrong, beside the good ones', () => {
  const rows = devicesFromCsv('name,metadata,status\na,{}\n,{}\nb,[1]\nc,{x\nd,,on\n"e\nf",,\n');
  assert.deepEqual(
    rows.map((r) => [r.line, r.error ?? 'ok']),
    [
      [2, 'ok'],
      [3, 'the name is empty'],
      [4, 'metadata is a JSON object'],
      [5, 'metadata is not JSON'],
      [6, 'status is enabled or disabled'],
      [7, 'ok'],
    ],
  );
  assert.equal(rows[5]!.name, 'e\nf', 'a quoted field keeps its line break');
});

test('a file whose header is not device columns, or holds no device, is refused as a whole', () => {
  assert.throws(() => devicesFromCsv('label\nx\n'), /the columns are name, tags, metadata and status \(name required\), not label/);
  assert.throws(() => devicesFromCsv('name\n'), /holds no device/);
  assert.throws(() => devicesFromCsv(''), /the file is empty/);
  assert.throws(() => parseCsv('name\n"open'), /line 2: a quoted field is not closed/);
});

test('written CSV quotes what needs it and reads back the same', () => {
  const text = toCsv(['id', 'name', 'secret'], [['1', 'a,b', 's"1'], ['2', 'plain', 's2']]);
  assert.equal(text, 'id,name,secret\r\n1,"a,b","s""1"\r\n2,plain,s2\r\n');
  assert.deepEqual(parseCsv(text).map((r) => r.fields), [['id', 'name', 'secret'], ['1', 'a,b', 's"1'], ['2', 'plain', 's2']]);
});
