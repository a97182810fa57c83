import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../core/ids.js';
import { openTestDatabase, type TestDatabase } from '../../test/helpers/database.js';
import type { Envelope } from '../messaging/envelope.js';
import { DeadLetterRepository, maxDeadLetterError } from './dead-letters.js';

describe('dead letters', () => {
  let testDb: TestDatabase;
  let repo: DeadLetterRepository;
  before(async () => {
    testDb = await openTestDatabase();
    repo = new DeadLetterRepository(testDb.db);
  });
  after(() => testDb.cleanup());

  const envelope = (over: Partial<Envelope> = {}): Envelope => ({
    id: uuidv7(), org: 'org-a', channel: 'ch', subtopic: 'a/b', publisher: 'dev', protocol: 'mqtt', contentType: 'application/json', payload: Buffer.from([0, 1, 2, 0xff]), receivedAt: Date.UTC(2026, 0, 1), ...over,
  });

  test('a message is kept once, with its payload bytes and its first reason', async () => {
    const env = envelope();
    assert.equal(await repo.add(env, 'first reason', Date.UTC(2026, 0, 2)), true);
    assert.equal(await repo.add(env, 'second reason', Date.UTC(2026, 0, 3)), false, 'redelivered');
    const got = await repo.get('org-a', env.id);
    assert.deepEqual({ ...got, payload: [...got.payload] }, {
      id: env.id, org_id: 'org-a', channel: 'ch', subtopic: 'a/b', publisher: 'dev', protocol: 'mqtt', content_type: 'application/json',
      payload: [0, 1, 2, 0xff], received_at: '2026-01-01T00:00:00.000Z', failed_at: '2026-01-02T00:00:00.000Z', error: 'first reason',
    });
  });

  test('text no database stores (U+0000, lone surrogates) is replaced, so that the message can still be set aside; long errors are cut', async () => {
    const env = envelope({ subtopic: 'a\u0000b', contentType: 'text/\ud800plain' });
    assert.equal(await repo.add(env, `bad \u0000 ${'x'.repeat(5000)}`, Date.now()), true);
    const got = await repo.get('org-a', env.id);
    assert.equal(got.subtopic, 'a\ufffdb');
    assert.equal(got.content_type, 'text/\ufffdplain');
    assert.equal(got.error.length, maxDeadLetterError);
    assert.ok(got.error.startsWith('bad \ufffd x'));
  });

  test('an organization sees, and deletes, only its own', async () => {
    const other = envelope({ org: 'org-b' });
    await repo.add(other, 'why', Date.now());
    await assert.rejects(repo.get('org-a', other.id), { code: 'dead_letter.not_found' });
    await assert.rejects(repo.delete('org-a', other.id), { code: 'dead_letter.not_found' });
    await assert.rejects(repo.get('org-a', 'not-a-uuid'), { code: 'dead_letter.not_found' });
    assert.equal((await repo.list('org-b', 0, 10)).total, 1);
    const a = await repo.list('org-a', 0, 10);
    assert.equal(a.total, 2);
    assert.equal(await repo.deleteAll('org-a'), 2);
    assert.equal((await repo.list('org-a', 0, 10)).total, 0);
    await repo.delete('org-b', other.id);
    assert.equal((await repo.list('org-b', 0, 10)).total, 0);
  });
});
