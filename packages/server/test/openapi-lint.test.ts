// test-database: once (the subject is not the database: it runs in the SQLite pass only)
// The OpenAPI linter (Redocly, packages/server/redocly.yaml) accepts the served document with zero
// errors, as `npm run lint:openapi` checks in CI: a route added without an operationId, a
// description or its security fails `npm test` too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedDocument, lintDocument } from '../scripts/lint-openapi.js';
import { repositoryRoot } from '../scripts/docs-content.js';

test('the OpenAPI linter finds no error in /openapi.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-openapi-lint-'));
  try {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, await generatedDocument());
    const { code, output } = lintDocument(file);
    assert.equal(code, 0, output);
    assert.match(output, /valid/i);
    assert.doesNotMatch(output, /\berror\b/, output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the linter does fail a document with an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-openapi-lint-'));
  try {
    const file = join(dir, 'openapi.json');
    // an operation without operationId, description or responses
    writeFileSync(file, JSON.stringify({ openapi: '3.1.0', info: { title: 'x', version: '1', license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } }, servers: [{ url: 'http://127.0.0.1:8080' }], paths: { '/x': { get: {} } } }));
    const { code, output } = lintDocument(file);
    assert.notEqual(code, 0, output);
    assert.match(output, /operationId/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/openapi.json is the document the platform serves (run `npm run docs`): the console and CLI clients are generated from it', async () => {
  assert.equal(readFileSync(join(repositoryRoot, 'docs', 'openapi.json'), 'utf8'), await generatedDocument(), 'docs/openapi.json is out of date: run npm run docs');
});
