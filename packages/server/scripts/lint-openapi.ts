// Lints the OpenAPI document the platform serves at /openapi.json with Redocly's linter, under
// packages/server/redocly.yaml. `npm run lint:openapi` (CI runs it; test/openapi-lint.test.ts too).
// The document is generated from the route schemas of a platform built in memory (no listener);
// `--out <file>` keeps it. Exit code: the linter's (non-zero on any error).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/core/config.js';
import { systemClock } from '../src/core/clock.js';
import { createLogger } from '../src/core/logger.js';
import { createPlatform } from '../src/platform.js';
import { buildApp } from '../src/http/app.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The document as GET /openapi.json answers it, from a throwaway in-memory platform. */
export async function generatedDocument(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-openapi-'));
  try {
    const config = loadConfig({}, { dataDir, databaseUrl: 'sqlite::memory:', logLevel: 'silent' });
    const platform = await createPlatform(config, { clock: systemClock, log: createLogger(config.logLevel), key: randomBytes(32) });
    try {
      const app = await buildApp(platform);
      try {
        await app.ready();
        const res = await app.inject({ method: 'GET', url: '/openapi.json' });
        if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}: ${res.body}`);
        return JSON.stringify(res.json(), null, 2) + '\n';
      } finally {
        await app.close();
      }
    } finally {
      await platform.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Runs the Redocly CLI with `args` (no usage reports, no update check); returns its exit code and output. */
export function redocly(args: string[]): { code: number; output: string } {
  const cli = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
  const res = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  return { code: res.status ?? 1, output: `${res.stdout}${res.stderr}` };
}

/** Runs `redocly lint` on `file` with our config. */
export function lintDocument(file: string): { code: number; output: string } {
  return redocly(['lint', file, '--config', join(packageRoot, 'redocly.yaml'), '--format', 'stylish']);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outArg = process.argv.indexOf('--out');
  const keep = outArg >= 0 ? resolve(process.argv[outArg + 1] ?? 'openapi.json') : undefined;
  const dir = keep ? undefined : mkdtempSync(join(tmpdir(), 'fleetwire-openapi-lint-'));
  const file = keep ?? join(dir!, 'openapi.json');
  try {
    writeFileSync(file, await generatedDocument());
    const { code, output } = lintDocument(file);
    process.stdout.write(output);
    process.exitCode = code;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
