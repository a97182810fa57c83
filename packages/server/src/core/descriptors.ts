// How many file descriptors the process may hold, and how many of them MQTT connections may take.
// Every socket is a descriptor: MQTT connections left unbounded would take the last ones and lock
// out HTTP (the API, /health), the database and NATS. Node has no getrlimit; on Linux the soft limit
// is in /proc/self/limits, elsewhere it is unknown and the configured limit stands.
import { readFileSync } from 'node:fs';

/** The soft limit on open files, or undefined where it cannot be read. */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface ConnectionBudget {
  /** MQTT connections that completed their CONNECT, at most. */
  maxConnections: number;
  /** Descriptors kept for everything else: HTTP and WebSocket clients, the database, NATS, CoAP, files. */
  reserved: number;
  /** The configured limit was above what the descriptors allow, and was lowered. */
  lowered: boolean;
}

/**
 * The MQTT connection limit the descriptors allow: a fifth of them (at least 256, at most 10,000)
 * stays for the rest of the platform, and the connections still waiting for their CONNECT (they
 * hold a descriptor each) come out of MQTT's share. `configured` 0 takes all of that share; a
 * larger configured limit than the share is lowered to it.
 */
export function connectionBudget(configured: number, maxUnauthenticated: number, fdLimit: number | undefined): ConnectionBudget {
  if (fdLimit === undefined) return { maxConnections: configured || unknownLimitDefault, reserved: 0, lowered: false };
  const reserved = Math.min(10_000, Math.max(256, Math.ceil(fdLimit / 5)));
  const allowed = Math.max(1, fdLimit - reserved - maxUnauthenticated);
  if (configured === 0) return { maxConnections: allowed, reserved, lowered: false };
  return configured > allowed ? { maxConnections: allowed, reserved, lowered: true } : { maxConnections: configured, reserved, lowered: false };
}

/** The limit where the descriptors cannot be read and none is configured. */
const unknownLimitDefault = 100_000;
