import net from 'node:net';

/**
 * Whether a test that needs an external service should run. In CI (FLEETWIRE_REQUIRE_SERVICES=1)
 * a missing service is a failure, never a skip; elsewhere the test is skipped with a message that
 * says what to start.
 */
export async function serviceAvailable(name: string, url: string): Promise<true | string> {
  const u = new URL(url);
  const ok = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
  if (ok) return true;
  const message = `${name} is not reachable at ${url}: start it to run these tests`;
  if (process.env.FLEETWIRE_REQUIRE_SERVICES === '1') throw new Error(`${message} (FLEETWIRE_REQUIRE_SERVICES=1)`);
  return message;
}

export const natsUrl = process.env.FLEETWIRE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
