// test-database: none
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPasswordCost, dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js';

describe('password hashes', () => {
  test('a hash records its scrypt cost, N = 2^cost, and the production default is 2^15', async () => {
    assert.equal(defaultPasswordCost, 15);
    assert.equal((await hashPassword('correct-horse', 10)).split('$')[1], '1024');
    assert.equal((await hashPassword('correct-horse')).split('$')[1], '32768');
  });

  test('a hash verifies at its own cost whatever the current one, and only with its password', async () => {
    const cheap = await hashPassword('correct-horse', 10);
    const dear = await hashPassword('correct-horse', 16);
    assert.equal(await verifyPassword('correct-horse', cheap), true);
    assert.equal(await verifyPassword('correct-horse', dear), true);
    assert.equal(await verifyPassword('wrong-horse', cheap), false);
    assert.equal(await verifyPassword('correct-horse', 'not a hash'), false);
  });

  test('the stand-in hash for unknown accounts is made at the cost asked for', async () => {
    assert.equal((await dummyPasswordHash(11)).split('$')[1], '2048');
    assert.equal(await dummyPasswordHash(11), await dummyPasswordHash(11), 'made once per cost');
  });
});
