// Writes the generated reference pages: docs/configuration.md (from the settings table in
// src/core/config.ts), docs/permissions.md (from the role table in src/auth/permissions.ts) and
// docs/openapi.json (the document GET /openapi.json serves, from which the console's and the CLI's
// API clients are generated). `npm run docs` rewrites them; test/docs.test.ts fails when they are
// out of date.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedDocs, repositoryRoot } from './docs-content.js';
import { generatedDocument } from './lint-openapi.js';

for (const [path, text] of Object.entries(generatedDocs())) {
  writeFileSync(join(repositoryRoot, path), text);
  console.log(`wrote ${path}`);
}

writeFileSync(join(repositoryRoot, 'docs', 'openapi.json'), await generatedDocument());
console.log('wrote docs/openapi.json');
