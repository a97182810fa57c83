// test-database: none
// What a new user reads first and what each package promises: the licence, the declared
// dependencies, and a README that speaks to the user's machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { repositoryRoot } from '../scripts/docs-content.js';

interface Manifest {
  name: string;
  license?: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  workspaces?: string[];
}

const read = (path: string) => readFileSync(join(repositoryRoot, path), 'utf8');
const manifest = (dir: string) => JSON.parse(read(join(dir, 'package.json'))) as Manifest;
const root = manifest('.');
const packages = root.workspaces ?? [];

test('the LICENSE file is the licence every package.json names', () => {
  const licence = read('LICENSE');
  assert.match(licence, /^\s*Apache License\s+Version 2\.0, January 2004/);
  for (const dir of ['.', ...packages]) assert.equal(manifest(dir).license, 'Apache-2.0', `${dir}/package.json`);
});

/** Every .ts/.tsx file under dir, tests and benches included, but not node_modules or build output. */
function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The package names a file imports (static and dynamic imports, `import.meta.resolve`), without Node's own modules. */
function importedPackages(text: string): Set<string> {
  const found = new Set<string>();
  const specifiers = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|import\.meta\.resolve\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(specifiers)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? m[4]!;
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
    const parts = spec.split('/');
    found.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
  }
  return found;
}

test('every package declares each package its code imports', () => {
  for (const dir of packages) {
    const m = manifest(dir);
    const declared = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.devDependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);
    for (const file of sources(join(repositoryRoot, dir))) {
      for (const name of importedPackages(readFileSync(file, 'utf8'))) {
        if (name === m.name) continue;
        // type-only packages resolve through @types/<name>
        assert.ok(declared.has(name) || declared.has(`@types/${name}`), `${file.slice(repositoryRoot.length + 1)} imports ${name}, which ${dir}/package.json does not declare`);
      }
    }
  }
});

test('the platform\'s runtime code imports only its dependencies, not its dev dependencies', () => {
  const m = manifest('packages/server');
  const runtime = new Set(Object.keys(m.dependencies ?? {}));
  for (const file of sources(join(repositoryRoot, 'packages/server/src'))) {
    if (/\.(test|contract)\.ts$/.test(file)) continue;
    const text = readFileSync(file, 'utf8');
    for (const name of importedPackages(text)) {
      // a type-only import leaves nothing at run time
      const typeOnly = new RegExp(`import\\s+type\\s[^'"]*from\\s+['"]${name.replace(/[/.]/g, '\\$&')}`).test(text);
      if (name === 'tsx' || typeOnly) continue; // tsx: only when the source runs under tsx (writer-thread.ts)
      assert.ok(runtime.has(name), `${file.slice(repositoryRoot.length + 1)} imports ${name}: a runtime dependency that package.json lists only for development`);
    }
  }
});

test('the device SDK and the console pull in no database driver or HTTP server', () => {
  for (const dir of ['packages/device', 'packages/console']) {
    const deps = Object.keys(manifest(dir).dependencies ?? {});
    for (const banned of ['better-sqlite3', 'pg', 'fastify', 'fleetwire']) assert.ok(!deps.includes(banned), `${dir} depends on ${banned}`);
  }
});

test('the README speaks to the reader\'s machine and its helper runs no eval', () => {
  const readme = read('README.md');
  assert.doesNotMatch(readme, /these machines|this machine/i);
  assert.doesNotMatch(readme, /\beval\(/);
  assert.match(readme, /Node\.js 24/);
  assert.match(readme, /docs\/architecture\.md/);
});

test('the repository pins Node.js 24: engines, .nvmrc and engine-strict', () => {
  assert.match(read('.nvmrc').trim(), /^24(\.|$)/);
  assert.match(read('.npmrc'), /^engine-strict=true$/m);
  for (const dir of ['.', ...packages]) assert.equal((manifest(dir) as Manifest & { engines?: { node?: string } }).engines?.node, '>=24', `${dir}/package.json engines.node`);
});
