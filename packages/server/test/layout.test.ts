// test-database: none
// The layout docs/architecture.md promises, checked on the code's own imports: no two top-level
// parts of the platform import each other, and the transport-free core imports no edge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Production files of src/ (tests and contract suites are not part of the layering). */
function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.contract.ts')) out.push(path);
  }
  return out;
}

/** The top-level part of src/ a path belongs to: its first folder, or the file itself at the top. */
const partOf = (path: string) => relative(src, path).split('/')[0]!.replace(/\.js$/, '.ts');

interface Import { from: string; to: string; spec: string }

function imports(): Import[] {
  const found: Import[] = [];
  const rx = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g;
  for (const file of files(src)) {
    for (const m of readFileSync(file, 'utf8').matchAll(rx)) {
      const spec = (m[1] ?? m[2])!;
      found.push({ from: file, to: spec.startsWith('.') ? normalize(join(dirname(file), spec)) : spec, spec });
    }
  }
  return found;
}

test('no two parts of src/ import each other', () => {
  const edges = new Map<string, string>();
  for (const i of imports()) {
    if (!i.spec.startsWith('.')) continue;
    const a = partOf(i.from);
    const b = partOf(i.to);
    if (a !== b && !edges.has(`${a} -> ${b}`)) edges.set(`${a} -> ${b}`, `${relative(src, i.from)} imports ${i.spec}`);
  }
  const cycles: string[] = [];
  for (const [edge, example] of edges) {
    const [a, b] = edge.split(' -> ') as [string, string];
    const back = edges.get(`${b} -> ${a}`);
    if (back && a < b) cycles.push(`${a} <-> ${b}: ${example}; ${back}`);
  }
  assert.deepEqual(cycles, []);
});

test('the messaging core and storage import no edge: no HTTP, WebSocket, MQTT or CoAP code', () => {
  const edgeParts = new Set(['http', 'mqtt', 'coap', 'server.ts', 'cli.ts', 'platform.ts']);
  const edgePackages = /^(fastify|@fastify\/|ws$|mqtt-packet|coap-packet|node:http|node:https|node:net|node:dgram)/;
  const offending = imports()
    .filter((i) => ['messaging', 'storage', 'core', 'auth'].includes(partOf(i.from)))
    .filter((i) => (i.spec.startsWith('.') ? edgeParts.has(partOf(i.to)) : edgePackages.test(i.spec)))
    .map((i) => `${relative(src, i.from)} imports ${i.spec}`);
  assert.deepEqual(offending, []);
});
