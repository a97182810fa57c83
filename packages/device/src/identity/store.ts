/**
 * The key store: one folder per device identity (mode 0700) holding
 *
 *   device.key     the private key, PKCS#8 PEM, mode 0600: made here, never sent anywhere
 *   device.pem     the device certificate
 *   chain.pem      the organization's issuing CA, then the platform root
 *   identity.json  who the certificate says the device is and where it connects
 *   ca.pem         optional: what signed the platform's listener certificates, when not its root
 *
 * An enrolment or renewal changes several files at once (a new key goes with its certificate), so
 * a change is committed as one step: every new file is written beside its old one as
 * `<name>.next` and flushed, then a `commit` file names them, then each is renamed over its old
 * one. Opening the store finishes a commit a crash interrupted (the `commit` file is there) or
 * drops one that never got that far: the files always belong together.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FleetwireError } from '../errors.js';
import { pemBlocks } from './keys.js';

/** What identity.json holds: the enrolment's answer without the PEMs. */
export interface StoredIdentity {
  device_id: string;
  org_id: string;
  registration_id: string;
  /** The device serial (the registration's), not the certificate's. */
  serial: string;
  certificate_serial: string;
  /** ISO 8601. */
  not_after: string;
  channel_ids: string[];
  /** Where the device connects, as the platform answered (`http`, `mqtts`, …). */
  endpoints: Record<string, string>;
  /** ISO 8601: when the stored certificate was issued to this store (enrolment or renewal). */
  issued_at: string;
}

export type StoreFile = 'device.key' | 'device.pem' | 'chain.pem' | 'identity.json' | 'ca.pem';

export interface StoredCredentials {
  key: string;
  certificate: string;
  /** The issuing CA, then the root. */
  chain: string[];
  identity: StoredIdentity;
  ca: string | undefined;
}

/** The default store folder, relative to the working directory. */
export const defaultStoreDir = './fleetwire-device';

const privateMode = 0o600; // the key: its owner only
const publicMode = 0o644;
const folderMode = 0o700;
const commitMarker = 'commit';

export class IdentityStore {
  readonly dir: string;
  private recovered = false;

  constructor(dir: string = defaultStoreDir) {
    this.dir = resolve(dir);
  }

  path(file: StoreFile): string {
    return join(this.dir, file);
  }

  /** The private key PEM, or undefined when the store has none yet. */
  async readKey(): Promise<string | undefined> {
    await this.recover();
    return readOptional(this.path('device.key'));
  }

  /** The `ca.pem` an enrolment was given, if any. */
  async readCa(): Promise<string | undefined> {
    await this.recover();
    return readOptional(this.path('ca.pem'));
  }

  /** Everything a connection or a renewal needs; `not_enrolled` when the store holds no certificate. */
  async read(): Promise<StoredCredentials> {
    await this.recover();
    const [key, certificate, chain, identity, ca] = await Promise.all(['device.key', 'device.pem', 'chain.pem', 'identity.json', 'ca.pem'].map((f) => readOptional(this.path(f as StoreFile))));
    if (key === undefined || certificate === undefined || identity === undefined) {
      throw new FleetwireError('not_enrolled', `${this.dir} holds no enrolled identity (device.key, device.pem, identity.json): run enrol first`);
    }
    let parsed: StoredIdentity;
    try {
      parsed = JSON.parse(identity) as StoredIdentity;
    } catch (e) {
      throw new FleetwireError('store_invalid', `${this.path('identity.json')} is not JSON`, { cause: e });
    }
    return { key, certificate, chain: pemBlocks(chain ?? ''), identity: parsed, ca };
  }

  /** Writes the given files as one change (see above). */
  async commit(files: Partial<Record<StoreFile, string>>): Promise<void> {
    await this.prepareFolder();
    await this.recover();
    const names = Object.keys(files) as StoreFile[];
    for (const name of names) writeDurably(join(this.dir, `${name}.next`), files[name]!, name === 'device.key' ? privateMode : publicMode);
    writeDurably(join(this.dir, `${commitMarker}.next`), JSON.stringify(names), publicMode);
    await rename(join(this.dir, `${commitMarker}.next`), join(this.dir, commitMarker));
    syncFolder(this.dir);
    await this.finish(names);
  }

  /** Makes the folder, or closes an existing one to its owner. */
  private async prepareFolder(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: folderMode });
    const { mode } = await stat(this.dir);
    if ((mode & 0o777) !== folderMode) await chmod(this.dir, folderMode); // umask may have widened it
  }

  /** Once per store object: finishes or drops a change a crash interrupted. */
  private async recover(): Promise<void> {
    if (this.recovered) return;
    this.recovered = true;
    const marker = await readOptional(join(this.dir, commitMarker));
    if (marker !== undefined) return this.finish(JSON.parse(marker) as StoreFile[]);
    // no commit file: whatever `.next` files there are never made it to a commit
    const all: StoreFile[] = ['device.key', 'device.pem', 'chain.pem', 'identity.json', 'ca.pem'];
    await Promise.all([...all, commitMarker].map((f) => rm(join(this.dir, `${f}.next`), { force: true })));
  }

  private async finish(names: StoreFile[]): Promise<void> {
    for (const name of names) {
      const next = join(this.dir, `${name}.next`);
      if ((await readOptional(next)) !== undefined) await rename(next, join(this.dir, name));
    }
    syncFolder(this.dir);
    await rm(join(this.dir, commitMarker), { force: true });
    syncFolder(this.dir);
  }
}

/** A file flushed to disk with the mode it is created with (a key is never readable by others, not even for a moment). */
function writeDurably(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'w', mode);
  try {
    fchmodSync(fd, mode); // the mode given to open applies only to a file it creates
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** So that the renames survive a power cut (POSIX: a rename is durable once its folder is flushed). */
function syncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
