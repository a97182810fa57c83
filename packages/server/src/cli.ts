#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, configReference } from './core/config.js';
import { AppError } from './core/errors.js';
import { version } from './core/version.js';

// Exit codes: 0 done, 1 failed (a setting, start-up, a command's work), 2 the command line is wrong.
const usageError = 2;

/**
 * The `fleetwire` command. Parsing comes first and does nothing else: `--help` on any command
 * prints its usage and exits before any setting is read, folder created or server started. Each
 * action loads what it needs only when it runs.
 */
function program(): Command {
  const cli = new Command('fleetwire')
    .description('Fleetwire IoT platform: messaging over MQTT, HTTP, WebSocket and CoAP, and fleet management.')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'print this usage')
    .option('-c, --config <file>', 'JSON config file (instead of FLEETWIRE_CONFIG)')
    .showHelpAfterError('(add --help for usage)') // inherited, with exitOverride, by every command made below
    .exitOverride()
    .addHelpText('after', '\nSettings come from FLEETWIRE_* variables and the config file: see docs/configuration.md.\nEvery command takes --help; docs/cli.md describes them.');

  /** The environment an action reads its settings from: --config names the config file. */
  const env = (): NodeJS.ProcessEnv => {
    const file = cli.opts<{ config?: string }>().config;
    return file === undefined ? process.env : { ...process.env, FLEETWIRE_CONFIG: file };
  };

  cli
    .command('start')
    .description('start the platform: HTTP API, MQTT, CoAP; SIGTERM/SIGINT stop it, SIGHUP reloads the log level and TLS certificates')
    .action(async () => (await import('./cli/start.js')).start(env()));

  cli
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(async () => (await import('./cli/commands.js')).migrateCommand(env()));

  const admin = cli.command('admin').description('manage platform admins');
  admin
    .command('create')
    .description('create a platform admin and print it as JSON')
    .requiredOption('--email <email>', 'the admin\'s email')
    .option('--password <password>', 'the password (default: FLEETWIRE_ADMIN_PASSWORD, else read from standard input)')
    .option('--name <name>', 'display name')
    .action(async (options: { email: string; password?: string; name?: string }) => (await import('./cli/commands.js')).adminCreate(env(), options));

  const config = cli.command('config').description('show or check the settings');
  config
    .command('show', { isDefault: true })
    .description('print every setting\'s effective value and where it came from, secrets masked (the default)')
    .option('--json', 'print a JSON object by config file key')
    .action(async (options: { json?: boolean }) => (await import('./cli/commands.js')).configShow(env(), options));
  config
    .command('check')
    .description('check the settings and the files they name, as start would, without starting; exit 1 naming the first bad one')
    .action(async () => (await import('./cli/commands.js')).configCheck(env()));
  config
    .command('reference')
    .description('print the table of every setting (Markdown), as in docs/configuration.md')
    .action(() => void process.stdout.write(configReference() + '\n'));

  cli
    .command('version')
    .description('print the version')
    .action(() => void process.stdout.write(version + '\n'));
  return cli;
}

/** A failure an operator can act on is one line that names its cause; anything else is a bug, with its stack. */
function report(e: unknown): number {
  if (e instanceof CommanderError) {
    // help and version are "errors" only to commander; its own message is already written
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : usageError;
    return usageError;
  }
  // MigrationError by name: importing the database layer here would load it for `--help` too
  const expected = e instanceof ConfigError || e instanceof AppError || (e instanceof Error && e.name === 'MigrationError');
  process.stderr.write(`fleetwire: ${expected ? (e as Error).message : ((e as Error).stack ?? String(e))}\n`);
  return 1;
}

program()
  .parseAsync(process.argv.slice(2), { from: 'user' })
  .then(
    () => {},
    (e: unknown) => {
      // exit now: a failed start may leave a handle (a pool, a timer) that would keep the process up
      process.exit(report(e));
    },
  );
