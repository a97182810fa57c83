// Loaded by scripts/test.mjs into every test file's process (`--import`). A file whose first lines
// say `// test-database: none` runs once, not once per database; so that the marker cannot hide a
// file that does use one, opening a database in such a file throws.
import { readFileSync } from 'node:fs';

/** `none` (no database: one run), `sqlite` (SQLite only, whatever the pass), or undefined (once per database). */
export function testDatabaseMarker(file: string): 'none' | 'sqlite' | undefined {
  const head = readFileSync(file, 'utf8').slice(0, 2000);
  return /^\/\/ test-database: (none|sqlite)\b/m.exec(head)?.[1] as 'none' | 'sqlite' | undefined;
}

const file = process.argv[1];
if (file?.endsWith('.test.ts') && testDatabaseMarker(file) === 'none') {
  process.env.FLEETWIRE_TEST_DATABASE = 'none';
  const { Database } = await import('../../src/db/database.js');
  Database.open = async () => {
    throw new Error(`${file} is marked "// test-database: none" but opens a database: remove the marker so that it runs once per database`);
  };
}
