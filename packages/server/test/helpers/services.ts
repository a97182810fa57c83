import { spawnSync } from 'node:child_process';
import net from 'node:net';

/**
 * Whether a test that needs an external service should run. In CI (FLEETWIRE_REQUIRE_SERVICES=1)
 * a missing service is a failure, never a skip; elsewhere the test is skipped with a message that
 * says what to start.
 */
export async function serviceAvailable(name: string, url: string): Promise<true | string> {
  const u = new URL(url);
  const attempt = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ host: u.hostname, port: Number(u.port) });
      s.setTimeout(5000);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
      s.once('timeout', () => (s.destroy(), resolve(false)));
    });
  // a loaded machine (CI beside other work) can miss one connect deadline: a service is missing
  // only when three attempts in a row fail
  let ok = false;
  for (let i = 0; i < 3 && !ok; i++) ok = await attempt();
  if (ok) return true;
  return unavailable(`${name} is not reachable at ${url}: start it to run these tests`);
}

/** The first of `names` on the PATH: some programs have other names elsewhere (Debian's libcoap3-bin names coap-client after its TLS library). */
export function findProgram(...names: string[]): string | undefined {
  return names.find((n) => spawnSync('sh', ['-c', `command -v ${n}`]).status === 0);
}

/**
 * Whether a test that runs the given programs (each as findProgram found it) should run, in the
 * same way as serviceAvailable: in CI a missing program fails, elsewhere the test is skipped with
 * the Debian packages to install.
 */
export function programsAvailable(programs: Record<string, string | undefined>, debianPackages: string): true | string {
  const missing = Object.entries(programs).filter(([, path]) => !path).map(([name]) => name);
  if (missing.length === 0) return true;
  return unavailable(`${missing.join(', ')} not installed (Debian: apt-get install -y ${debianPackages})`);
}

function unavailable(message: string): string {
  if (process.env.FLEETWIRE_REQUIRE_SERVICES === '1') throw new Error(`${message} (FLEETWIRE_REQUIRE_SERVICES=1)`);
  return message;
}

export const natsUrl = process.env.FLEETWIRE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
