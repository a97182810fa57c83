// test-database: own
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { runRepositoryContract } from './repositories.contract.js';
import { testPostgresUrl } from '../../test/helpers/database.js';

// The PostgreSQL implementation of the repository contract. scripts/test.mjs points
// FLEETWIRE_TEST_POSTGRES_URL at a database; CI sets FLEETWIRE_REQUIRE_SERVICES=1 so that a missing
// PostgreSQL fails the run instead of quietly testing one database only.
const url = testPostgresUrl;
const required = process.env.FLEETWIRE_REQUIRE_SERVICES === '1';

/** Why PostgreSQL cannot be used, or undefined when it answers. */
async function unreachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return `PostgreSQL is not reachable at ${url} (${(e as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

const why = await unreachable();
if (why && required) {
  test('PostgreSQL is available (FLEETWIRE_REQUIRE_SERVICES=1)', () => assert.fail(why));
} else {
  runRepositoryContract('postgres', why ? { skip: `${why}; start PostgreSQL (e.g. docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres) or set FLEETWIRE_TEST_POSTGRES_URL` } : {});
}
