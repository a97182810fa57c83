// Writes the generated reference pages: docs/configuration.md (from the settings table in
// src/core/config.ts) and docs/permissions.md (from the role table in src/auth/permissions.ts).
// `npm run docs` rewrites them; test/docs.test.ts fails when they are out of date.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedDocs, repositoryRoot } from './docs-content.js';

for (const [path, text] of Object.entries(generatedDocs())) {
  writeFileSync(join(repositoryRoot, path), text);
  console.log(`wrote ${path}`);
}
