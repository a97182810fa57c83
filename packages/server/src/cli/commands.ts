import { effectiveSettings, loadConfig } from '../core/config.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { migrate } from '../db/index.js';
import { createPlatform, openDatabase } from '../platform.js';
import { checkSettings } from '../server.js';

/** `fleetwire migrate`: applies pending migrations and exits. */
export async function migrateCommand(env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadConfig(env);
  const log = createLogger(config.logLevel);
  const db = await openDatabase(config, { poolSize: 1 });
  try {
    const report = await migrate(db);
    for (const m of report.applied) log.info({ version: m.version, name: m.name }, 'applied migration');
    log.info({ version: report.current, applied: report.applied.length }, 'database is up to date');
  } finally {
    await db.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** `fleetwire admin create`: prints the created user as JSON on standard output, for scripts. */
export async function adminCreate(env: NodeJS.ProcessEnv, options: { email: string; password?: string; name?: string }): Promise<void> {
  const password = options.password ?? env.FLEETWIRE_ADMIN_PASSWORD ?? (await readStdin());
  // the first-admin settings are for `start`; here they would only have to go together
  const settingsEnv = { ...env };
  delete settingsEnv.FLEETWIRE_ADMIN_EMAIL;
  delete settingsEnv.FLEETWIRE_ADMIN_PASSWORD;
  const config = loadConfig(settingsEnv);
  // logs go to standard error, so that standard output holds only the user
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  const platform = await createPlatform(config, { log, clock: systemClock, writer: false });
  try {
    const user = await platform.users.create({ email: options.email, password, role: 'admin', ...(options.name ? { name: options.name } : {}) });
    process.stdout.write(JSON.stringify(user) + '\n');
  } finally {
    await platform.close();
  }
}

/** `fleetwire config`: every setting's effective value and where it came from, secrets masked. */
export function configShow(env: NodeJS.ProcessEnv, options: { json?: boolean }): void {
  const rows = effectiveSettings(env);
  if (options.json) {
    // config file keys: the output, once edited, is a config file
    process.stdout.write(JSON.stringify(Object.fromEntries(rows.map((r) => [r.fileKey, r.value])), null, 2) + '\n');
    return;
  }
  const width = Math.max(...rows.map((r) => r.env.length + r.value.length + 1));
  for (const r of rows) process.stdout.write(`${`${r.env}=${r.value}`.padEnd(width)}  # ${r.source}\n`);
}

/** `fleetwire config check`: what `start` would check before starting, without starting anything. */
export async function configCheck(env: NodeJS.ProcessEnv): Promise<void> {
  await checkSettings(loadConfig(env));
  process.stdout.write('the settings are valid\n');
}
