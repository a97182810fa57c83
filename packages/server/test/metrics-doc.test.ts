// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// Every metric a running platform exposes is listed in docs/operations.md, and every metric listed
// there exists: the operator's page cannot drift from the scrape.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupCli, cliEnv, dataFolder, startCli } from './helpers/cli.js';
import { repositoryRoot } from '../scripts/docs-content.js';

after(cleanupCli);

/** The metric families of a Prometheus text scrape, from their `# TYPE` lines. */
const familiesOf = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!));

/** The metric names docs/operations.md lists: the first cell of each row of its metrics table. */
function documented(): Set<string> {
  const page = readFileSync(join(repositoryRoot, 'docs', 'operations.md'), 'utf8');
  const section = page.slice(page.indexOf('## Metrics'));
  return new Set([...section.matchAll(/^\| `(fleetwire_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
}

test('every metric of the scrape is in docs/operations.md and every one listed there is scraped', async () => {
  const server = await startCli(cliEnv(dataFolder(), { FLEETWIRE_MQTT_OPEN_PORT: 'off' }));
  try {
    // one request first, so that the per-request families have their samples
    await fetch(`${server.api}/health`);
    const scrape = await (await fetch(`${server.api}/metrics`)).text();
    const scraped = familiesOf(scrape);
    const listed = documented();
    assert.ok(scraped.size > 30, `only ${scraped.size} families scraped`);
    assert.deepEqual([...scraped].filter((n) => !listed.has(n)).sort(), [], 'scraped but not in docs/operations.md');
    assert.deepEqual([...listed].filter((n) => !scraped.has(n)).sort(), [], 'in docs/operations.md but not scraped');
  } finally {
    await server.stop();
  }
});
