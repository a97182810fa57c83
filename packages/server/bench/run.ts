// Runs every bench: each folder of bench/ with a run.ts, one child process apiece so that one
// bench's JIT and heap state do not colour the next. Arguments after `--` go to every bench.
//
//   npm run bench [-- --seconds 5]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const benches = readdirSync(here, { withFileTypes: true })
  .filter((e) => e.isDirectory() && !e.name.startsWith('.') && existsSync(join(here, e.name, 'run.ts')))
  .map((e) => e.name)
  .sort();

const failed: string[] = [];
for (const name of benches) {
  console.log(`\n=== bench/${name} ===`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(here, name, 'run.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (res.status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`\n${failed.length} of ${benches.length} benches failed or missed a target: ${failed.join(', ')}`);
  process.exit(1);
}
