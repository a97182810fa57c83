#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, configReference, loadConfig } from './core/config.js';
import { systemClock } from './core/clock.js';
import { createLogger } from './core/logger.js';
import { version } from './core/version.js';
import { Database, migrate, sqliteUrlFor, MigrationError } from './db/index.js';
import { createPlatform } from './platform.js';
import { startServer } from './server.js';
import { AppError } from './core/errors.js';

const usage = `fleetwire ${version}

Usage:
  fleetwire start                 start the platform (HTTP API; settings from FLEETWIRE_* variables)
  fleetwire migrate               apply pending database migrations and exit
  fleetwire admin create --email <email> [--password <password>] [--name <name>]
                                  create a platform admin (password read from FLEETWIRE_ADMIN_PASSWORD
                                  or standard input when not given)
  fleetwire config                print the configuration reference
  fleetwire version               print the version

Settings: docs/configuration.md`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const server = await startServer(loadConfig());
      const log = server.platform.log;
      // A promise nobody handled is a bug in the path of one client or task (a refused frame, a
      // failed subscription). Node's default would end the process, and every device's connection
      // with it: it is logged with its stack instead, for someone to report.
      process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection (a bug: please report it with this line)'));
      // An exception nobody caught may have left any state half-changed: the process still ends
      // (Node's default), after a log line that says why.
      process.on('uncaughtExceptionMonitor', (err, origin) => log.fatal({ err, origin }, 'uncaught exception: the process ends'));
      const stop = (signal: string) => {
        log.info({ signal }, 'signal received');
        server.close().then(() => process.exit(0), (e) => {
          log.error({ err: e }, 'error while shutting down');
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      return -1; // keep running
    }
    case 'migrate': {
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      const db = await Database.open({ url: config.databaseUrl || sqliteUrlFor(config.dataDir), poolSize: 1 });
      try {
        const report = await migrate(db);
        for (const m of report.applied) log.info({ version: m.version, name: m.name }, 'applied migration');
        log.info({ version: report.current, applied: report.applied.length }, 'database is up to date');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'admin': {
      if (rest[0] !== 'create') break;
      const { values } = parseArgs({ args: rest.slice(1), options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } } });
      if (!values.email) {
        process.stderr.write('admin create needs --email\n');
        return 2;
      }
      const env = { ...process.env };
      const password = values.password ?? env.FLEETWIRE_ADMIN_PASSWORD ?? (await readStdin());
      delete env.FLEETWIRE_ADMIN_EMAIL;
      delete env.FLEETWIRE_ADMIN_PASSWORD;
      const config = loadConfig(env);
      // standard output carries the created user as JSON, for scripts; logs go to standard error
      const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
      const platform = await createPlatform(config, { log, clock: systemClock, writer: false });
      try {
        const user = await platform.users.create({ email: values.email, password, role: 'admin', ...(values.name ? { name: values.name } : {}) });
        process.stdout.write(JSON.stringify(user) + '\n');
      } finally {
        await platform.close();
      }
      return 0;
    }
    case 'config':
      process.stdout.write(configReference() + '\n');
      return 0;
    case 'version':
    case '--version':
      process.stdout.write(version + '\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(usage + '\n');
      return command === undefined ? 2 : 0;
  }
  process.stderr.write(`unknown command: ${argv.join(' ')}\n\n${usage}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError || e instanceof MigrationError || e instanceof AppError) process.stderr.write(`fleetwire: ${e.message}\n`);
    else process.stderr.write(`fleetwire: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
