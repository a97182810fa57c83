import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError } from 'commander';
import { addClientCommands } from './program.js';

function program(): { cli: Command; out: () => string } {
  let written = '';
  const cli = new Command('fleetwire').exitOverride().configureOutput({ writeOut: (s) => (written += s), writeErr: (s) => (written += s) });
  addClientCommands(cli);
  const inherit = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: (s) => (written += s), writeErr: (s) => (written += s) });
    c.commands.forEach((s) => inherit(s as Command));
  };
  inherit(cli);
  return { cli, out: () => written };
}

function paths(c: Command, prefix: string[] = []): string[][] {
  return c.commands.flatMap((s) => [[...prefix, s.name()], ...paths(s as Command, [...prefix, s.name()])]);
}

test('every client command has a description and prints its usage with --help, running nothing', async () => {
  const all = paths(program().cli);
  assert.ok(all.length > 40, `${all.length} commands`);
  for (const path of all) {
    const { cli, out } = program();
    // an action that ran would fail here: it would need a login and a platform
    await assert.rejects(cli.parseAsync([...path, '--help'], { from: 'user' }), (e: unknown) => e instanceof CommanderError && e.code === 'commander.helpDisplayed', path.join(' '));
    assert.match(out(), new RegExp(`^Usage: fleetwire ${path.join(' ')}`), path.join(' '));
    const command = path.reduce<Command>((c, name) => c.commands.find((s) => s.name() === name) as Command, cli);
    assert.ok(command.description().length > 0, `${path.join(' ')} has a description`);
  }
});

test('list commands take --limit, --offset, --all and --json, and refuse a --limit the server would', async () => {
  for (const path of [['orgs', 'list'], ['members', 'list'], ['devices', 'list'], ['channels', 'list'], ['groups', 'list'], ['groups', 'devices'], ['messages', 'query'], ['tokens', 'list'], ['registrations', 'list'], ['enrolment-tokens', 'list'], ['certificates', 'list'], ['identity', 'events'], ['events', 'list']]) {
    const command = path.reduce<Command>((c, name) => c.commands.find((s) => s.name() === name) as Command, program().cli);
    const flags = command.options.map((o) => o.long);
    for (const flag of ['--limit', '--offset', '--all', '--json']) assert.ok(flags.includes(flag), `${path.join(' ')} ${flag}`);
  }
  const { cli, out } = program();
  await assert.rejects(cli.parseAsync(['devices', 'list', '--limit', '1001'], { from: 'user' }), (e: unknown) => e instanceof CommanderError && e.exitCode === 1 && e.code === 'commander.invalidArgument');
  assert.match(out(), /--limit is a whole number from 1 to 1000/);
});

test('identity options are checked as they are parsed: a lifetime out of range, a time that is none, a reason the platform does not know', async () => {
  for (const [args, message] of [
    [['enrolment-tokens', 'create', '--expires-in', '31d'], /--expires-in is from 1m to 30d/],
    [['enrolment-tokens', 'create', '--expires-in', 'an hour'], /--expires-in is a lifetime such as 15m/],
    [['certificates', 'list', '--expiring-before', '2027'], /the time is ISO 8601/],
    [['certificates', 'revoke', 'ab12', '--reason', 'lost'], /Allowed choices are unspecified, keyCompromise, superseded, cessationOfOperation, certificateHold/],
    [['registrations', 'list', '--state', 'active'], /Allowed choices are pending, enrolled, suspended, revoked/],
  ] as const) {
    const { cli, out } = program();
    // an action that ran would fail otherwise: it would need a login and a platform
    await assert.rejects(cli.parseAsync([...args], { from: 'user' }), (e: unknown) => e instanceof CommanderError && e.code === 'commander.invalidArgument', args.join(' '));
    assert.match(out(), message, args.join(' '));
  }
});
