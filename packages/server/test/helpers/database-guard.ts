// Loaded by scripts/test.mjs into every test file's process (`--import`). A file whose first lines
// say `// test-database: none` runs once, not once per database; so that the marker cannot hide a
// file that does use one, opening a database in such a file throws. The other way round, a file
// without a marker that opens no database in the PostgreSQL pass gets a note that it could have one.
import { readFileSync } from 'node:fs';

/**
 * `none` (no database), `own` (opens the databases it is about itself), `once` (its subject is not the
 * database, though the processes it starts have the pass's), or undefined (the pass's database); the
 * first three run in the first pass only.
 */
export function testDatabaseMarker(file: string): 'none' | 'own' | 'once' | undefined {
  const head = readFileSync(file, 'utf8').slice(0, 2000);
  return /^\/\/ test-database: (none|own|once)\b/m.exec(head)?.[1] as 'none' | 'own' | 'once' | undefined;
}

const file = process.argv[1];
const marker = file?.endsWith('.test.ts') ? testDatabaseMarker(file) : 'own';
if (marker === 'none') {
  process.env.FLEETWIRE_TEST_DATABASE = 'none';
  const { Database } = await import('../../src/db/database.js');
  Database.open = async () => {
    throw new Error(`${file} is marked "// test-database: none" but opens a database: remove the marker so that it runs once per database`);
  };
} else if (marker === undefined && process.env.FLEETWIRE_TEST_DATABASE === 'postgres') {
  const { Database } = await import('../../src/db/database.js');
  const open = Database.open.bind(Database);
  let opened = false;
  Database.open = (options) => {
    opened = true;
    return open(options);
  };
  process.once('beforeExit', () => {
    // a database made for a process the test started counts too (test/helpers/cli.ts)
    if (!opened && !process.env.FLEETWIRE_TEST_OPENED_DATABASE) console.error(`note: ${file} opened no database in the PostgreSQL pass; if it never does, "// test-database: none" on its first line runs it once`);
  });
}
