import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../errors.js';
import { devicesFromCsv } from './fleet.js';

test('a device CSV file gives one device a line: tags split on ;, metadata parsed, columns in any order and case', () => {
  const csv = '\uFEFFStatus,Name,metadata,tags\r\ndisabled,pump-1,"{""zone"":1}",a; b\r\n,pump-2,,\r\n\r\n';
  assert.deepEqual(devicesFromCsv(csv), [
    { name: 'pump-1', tags: ['a', 'b'], metadata: { zone: 1 }, status: 'disabled' },
    { name: 'pump-2' },
  ]);
});

test('a device CSV file that cannot be read as devices is a usage error naming the line', () => {
  const refused = (csv: string, message: RegExp) => assert.throws(() => devicesFromCsv(csv), (e: unknown) => e instanceof UsageError && message.test(e.message));
  refused('name\n', /holds no device/);
  refused('label\nx\n', /the columns are name, tags, metadata and status \(name required\), not label/);
  refused('name,metadata\na,{}\nb,[1]\n', /^line 3: metadata is a JSON object/);
  refused('name,metadata\na,nope\n', /^line 2: metadata is not JSON/);
  refused('name,status\na,on\n', /^line 2: status is enabled or disabled/);
  refused('name,tags\n"a,b\n', /the file is not CSV/);
});
