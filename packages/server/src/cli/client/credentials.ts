// Where `fleetwire login` keeps its tokens: one JSON file in the user's config folder, readable
// only by the user (mode 0600, its folder 0700), replaced whole on every change.
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

export interface Credentials {
  /** The platform's base URL the tokens belong to. */
  url: string;
  accessToken: string;
  /** Milliseconds since the epoch. */
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
  /** The organization chosen with `fleetwire orgs use`. */
  org?: { id: string; name: string };
}

/** `$XDG_CONFIG_HOME/fleetwire`, else `%APPDATA%\fleetwire` on Windows, else `~/.config/fleetwire`. */
export function configFolder(env: NodeJS.ProcessEnv): string {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'fleetwire');
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'fleetwire');
  return join(homedir(), '.config', 'fleetwire');
}

export function credentialsFile(env: NodeJS.ProcessEnv): string {
  return join(configFolder(env), 'credentials.json');
}

export function readCredentials(env: NodeJS.ProcessEnv): Credentials | undefined {
  let text: string;
  try {
    text = readFileSync(credentialsFile(env), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as Credentials;
  } catch {
    return undefined; // a damaged file is as good as none: `login` writes a new one
  }
}

/** Writes a temporary file with mode 0600 and renames it over the old one: never a moment when the tokens are readable by others, never half a file. */
export function writeCredentials(env: NodeJS.ProcessEnv, c: Credentials): void {
  const dir = configFolder(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = credentialsFile(env);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(temporary, 0o600); // the umask cannot widen it, but an old file of that name could have been wider
  renameSync(temporary, file);
}

export function removeCredentials(env: NodeJS.ProcessEnv): void {
  rmSync(credentialsFile(env), { force: true });
}

/** A lock older than this was left by a process that died while holding it. */
const staleLockMs = 30_000;
/** How long a command waits for another one's refresh before it gives up. */
const lockWaitMs = 15_000;

/**
 * Runs `work` while holding the lock file beside the credentials, so that commands started
 * together refresh the session once: the platform takes a refresh token presented twice for a
 * stolen one and ends the whole session. The lock is a file created exclusively (O_EXCL).
 */
export async function withCredentialsLock<T>(env: NodeJS.ProcessEnv, work: () => Promise<T>): Promise<T> {
  mkdirSync(configFolder(env), { recursive: true, mode: 0o700 });
  const lock = `${credentialsFile(env)}.lock`;
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > staleLockMs) rmSync(lock, { force: true });
      else if (Date.now() > deadline) throw new CliError(`${lock} is held by another fleetwire command; remove it if none is running`);
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
  }
}
