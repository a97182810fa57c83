#!/usr/bin/env node
/**
 * `fleetwire-device`: a device's identity and a sample device from the shell. Exit codes: 0 done,
 * 1 failed (the platform refused, could not be reached, …), 2 usage.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FleetwireError } from '../errors.js';
import { defaultStoreDir } from '../identity/store.js';
import { enrolCommand, jsonLog, keyCommand, renewCommand, runCommand, simulateCommand, UsageError } from './commands.js';

const usage = `Usage: fleetwire-device <command> [options]

Commands:
  enrol     --url URL --serial SERIAL [--token TOKEN] [--dir DIR] [--ca FILE] [--new-key]
            Make the device key (kept in DIR) if there is none, and enrol: POST /enrol with a CSR
            of it and the one-time token (no token: the platform holds the key in a registration).
  key       [--dir DIR]
            Print the device's public key (made now if there is none), for an operator to register.
  run       [--dir DIR] [--interval SECONDS] [--count N] [--channel ID] [--url MQTTS_URL] [--ca FILE]
            Connect over MQTT with TLS with the certificate, publish sample SenML telemetry every
            SECONDS (default 10) to the device's first channel, renew the certificate by itself.
  renew     [--dir DIR] [--url HTTPS_URL] [--ca FILE] [--new-key]
            Renew the certificate now (POST /renew over HTTPS with the current certificate).
  simulate  --count N --url URL (--token-file FILE | --access-token TOKEN --org ORG [--channel ID])
            [--serial-prefix PREFIX] [--dir DIR] [--interval SECONDS] [--messages M] [--ca FILE]
            N devices, each with its own key and certificate in DIR/<serial>, publishing telemetry.

Options:
  --dir DIR   the key store (default ${defaultStoreDir}; simulate: ./fleetwire-simulation)
  --ca FILE   the CA of the platform's listener certificates, when they are not publicly trusted
  --help      this text

Logs are JSON lines on stdout. Exit codes: 0 done, 1 failed, 2 usage.
`;

const options = {
  url: { type: 'string' },
  token: { type: 'string' },
  serial: { type: 'string' },
  dir: { type: 'string' },
  ca: { type: 'string' },
  'new-key': { type: 'boolean' },
  interval: { type: 'string' },
  count: { type: 'string' },
  channel: { type: 'string' },
  messages: { type: 'string' },
  'token-file': { type: 'string' },
  'access-token': { type: 'string' },
  org: { type: 'string' },
  'serial-prefix': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** Which options each command takes. */
const accepted: Record<string, (keyof typeof options)[]> = {
  enrol: ['url', 'token', 'serial', 'dir', 'ca', 'new-key'],
  key: ['dir'],
  run: ['dir', 'interval', 'count', 'channel', 'url', 'ca'],
  renew: ['dir', 'url', 'ca', 'new-key'],
  simulate: ['count', 'url', 'token-file', 'access-token', 'org', 'channel', 'serial-prefix', 'dir', 'interval', 'messages', 'ca'],
};

type Values = { [K in keyof typeof options]?: (typeof options)[K]['type'] extends 'boolean' ? boolean : string };

function required(values: Values, name: keyof typeof options): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function positive(values: Values, name: keyof typeof options, fallback: number | undefined, integer: boolean): number | undefined {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a ${integer ? 'whole ' : ''}number above 0, got ${JSON.stringify(v)}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  let command: string | undefined;
  let values: Values;
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    values = parsed.values as Values;
    command = parsed.positionals[0];
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    if (command === undefined) throw new UsageError('a command is required');
    if (!(command in accepted)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (parsed.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[1])}`);
    const wrong = Object.keys(values).filter((k) => !accepted[command!]!.includes(k as keyof typeof options));
    if (wrong.length) throw new UsageError(`${command} takes no --${wrong[0]}`);
  } catch (e) {
    return usageFailure(e);
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const dir = values.dir ?? defaultStoreDir;
    switch (command) {
      case 'enrol':
        await enrolCommand({ url: required(values, 'url'), serial: required(values, 'serial'), dir, newKey: values['new-key'] ?? false, ...pick(values, 'token', 'ca') }, jsonLog);
        break;
      case 'key':
        await keyCommand({ dir });
        break;
      case 'renew':
        await renewCommand({ dir, newKey: values['new-key'] ?? false, ...pick(values, 'url', 'ca') }, jsonLog);
        break;
      case 'run': {
        const count = positive(values, 'count', undefined, true);
        await runCommand({ dir, interval: positive(values, 'interval', 10, false)!, ...(count !== undefined ? { count } : {}), ...pick(values, 'channel', 'url', 'ca') }, jsonLog, stop.signal);
        break;
      }
      case 'simulate': {
        const messages = positive(values, 'messages', undefined, true);
        const count = positive(values, 'count', undefined, true);
        if (count === undefined) throw new UsageError('--count is required');
        await simulateCommand({
          url: required(values, 'url'),
          count,
          serialPrefix: values['serial-prefix'] ?? 'SIM-',
          dir: values.dir ?? './fleetwire-simulation',
          interval: positive(values, 'interval', 10, false)!,
          ...(messages !== undefined ? { messages } : {}),
          ...(values['token-file'] !== undefined ? { tokenFile: values['token-file'] } : {}),
          ...(values['access-token'] !== undefined ? { accessToken: values['access-token'] } : {}),
          ...pick(values, 'org', 'channel', 'ca'),
        }, jsonLog, stop.signal);
        break;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(e);
    const code = e instanceof FleetwireError ? e.code : undefined;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: (e as Error).message, ...(code ? { code } : {}) })}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

function usageFailure(e: unknown): number {
  process.stderr.write(`fleetwire-device: ${(e as Error).message}\n\n${usage}`);
  return 2;
}

function pick<K extends keyof typeof options>(values: Values, ...names: K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const n of names) if (typeof values[n] === 'string') out[n] = values[n] as string;
  return out;
}

process.exitCode = await main(process.argv.slice(2));
