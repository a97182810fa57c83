// Loaded by scripts/test.mjs into every test file's process (`--import`). A file whose first lines
// say `// test-database: none` runs once, not once per database; so that the marker cannot hide a
// file that does use one, opening a database in such a file throws.
import { readFileSync } from 'node:fs';

/** `none` (no database), `own` (opens the databases it is about itself), or undefined (the pass's database); the first two run once. */
export function testDatabaseMarker(file: string): 'none' | 'own' | undefined {
  const head = readFileSync(file, 'utf8').slice(0, 2000);
  return /^\/\/ test-database: (none|own)\b/m.exec(head)?.[1] as 'none' | 'own' | undefined;
}

const file = process.argv[1];
if (file?.endsWith('.test.ts') && testDatabaseMarker(file) === 'none') {
  process.env.FLEETWIRE_TEST_DATABASE = 'none';
  const { Database } = await import('../../src/db/database.js');
  Database.open = async () => {
    throw new Error(`${file} is marked "// test-database: none" but opens a database: remove the marker so that it runs once per database`);
  };
}
