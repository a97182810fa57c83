// `fleetwire login`, `logout`, `whoami`.
import { createInterface } from 'node:readline/promises';
import { readCredentials, removeCredentials } from '../credentials.js';
import { UsageError } from '../errors.js';
import { show, success } from '../output.js';
import { apiClient, normaliseUrl, ok, openSession, storeTokens } from '../session.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Reads a line from the terminal without showing it: raw mode, so that the terminal echoes nothing. */
function askHidden(question: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve) => {
    let typed = '';
    const finish = (after: () => void) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      after();
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(() => resolve(typed));
        if (ch === '\u0003') return finish(() => process.exit(130)); // Ctrl-C: as a shell reports SIGINT
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    // no echo before the prompt shows: what is typed after it is never on the screen
    input.setRawMode(true);
    process.stderr.write(question);
    input.resume();
    input.on('data', onData);
  });
}

export async function login(env: NodeJS.ProcessEnv, _args: unknown[], options: { url?: string; email?: string; passwordStdin?: boolean }): Promise<void> {
  const previous = readCredentials(env);
  const raw = options.url ?? env.FLEETWIRE_URL ?? previous?.url;
  if (raw === undefined) throw new UsageError('which platform? pass --url <the platform\'s URL>, e.g. --url http://127.0.0.1:8080');
  const url = normaliseUrl(raw);
  const terminal = process.stdin.isTTY === true;
  let email = options.email;
  if (email === undefined) {
    if (!terminal || options.passwordStdin) throw new UsageError('pass --email <email> (standard input is not a terminal to ask on)');
    email = await ask('Email: ');
  }
  let password: string;
  if (options.passwordStdin) password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  else if (terminal) password = await askHidden('Password: ');
  else throw new UsageError('standard input is not a terminal: pass --password-stdin and write the password to it');
  const pair = await ok(apiClient(url).POST('/auth/token', { body: { email, password } }));
  // the organization chosen before stays chosen when the same platform is signed in to again
  storeTokens(env, url, pair, previous?.url === url ? previous.org : undefined);
  process.stdout.write(`${success('signed in')} to ${url} as ${email}\n`);
}

export async function logout(env: NodeJS.ProcessEnv): Promise<void> {
  const c = readCredentials(env);
  if (c === undefined) {
    process.stdout.write('not signed in\n');
    return;
  }
  await ok(apiClient(c.url).POST('/auth/logout', { body: { refresh_token: c.refreshToken } }));
  removeCredentials(env);
  process.stdout.write(`signed out of ${c.url}\n`);
}

export async function whoami(env: NodeJS.ProcessEnv, _args: unknown[], options: { json?: boolean }): Promise<void> {
  const s = await openSession(env);
  const me = await ok(s.api.GET('/users/me'));
  const org = s.stored?.org;
  show(options, { ...me, url: s.url, ...(org ? { org: org.id, org_name: org.name } : {}) });
}
