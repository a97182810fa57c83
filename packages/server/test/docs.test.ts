// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedDocs, repositoryRoot } from '../scripts/docs-content.js';
import { generatedDocument } from '../scripts/lint-openapi.js';

test('generated reference pages are up to date (run `npm run docs`)', () => {
  for (const [path, text] of Object.entries(generatedDocs())) {
    assert.equal(readFileSync(join(repositoryRoot, path), 'utf8'), text, `${path} is out of date: run npm run docs`);
  }
});

test('docs/openapi.json is the document the platform serves (run `npm run docs`)', async () => {
  assert.equal(readFileSync(join(repositoryRoot, 'docs', 'openapi.json'), 'utf8'), await generatedDocument(), 'docs/openapi.json is out of date: run npm run docs');
});

test('the configuration reference names every setting the code reads', async () => {
  const { settings } = await import('../src/core/config.js');
  const doc = readFileSync(join(repositoryRoot, 'docs/configuration.md'), 'utf8');
  for (const s of Object.values(settings)) assert.ok(doc.includes(`\`${s.env}\``), `${s.env} missing`);
});
