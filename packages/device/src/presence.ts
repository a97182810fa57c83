/**
 * Presence heartbeats for a device that talks HTTP (docs/presence.md): a device connected over
 * MQTT is present while it is connected; one that reports on a schedule over HTTP declares its
 * interval with each heartbeat and is `idle` (present) until 1.5 × that passes without a message
 * or heartbeat, then `offline`. Every message it publishes counts as a heartbeat too.
 */
import { FleetwireError } from './errors.js';
import { platformRequest } from './identity/http.js';

export interface HeartbeatOptions {
  /** The platform's HTTP API, e.g. `https://fleet.example.com:8443`. */
  api: string;
  deviceId: string;
  /** The device secret; or, over HTTPS, `cert` and `key` (the platform certificate and its key). */
  secret?: string;
  cert?: string;
  key?: string;
  /** CA(s) to trust for https, PEM. */
  ca?: string | string[];
  /** Seconds until the next heartbeat at the latest (1 s to 7 days). */
  intervalSeconds: number;
  timeoutMs?: number;
}

/** Sends one heartbeat: `POST /devices/{id}/presence {"interval": …}`. Rejects with the platform's refusal (e.g. `presence.invalid_interval`). */
export async function sendHeartbeat(o: HeartbeatOptions): Promise<void> {
  if (!Number.isInteger(o.intervalSeconds) || o.intervalSeconds <= 0) throw new FleetwireError('invalid_options', 'intervalSeconds is a whole number of seconds above 0');
  if (o.secret === undefined && (o.cert === undefined || o.key === undefined)) throw new FleetwireError('invalid_options', 'a heartbeat needs the device secret, or its certificate and key (over https)');
  await platformRequest({
    method: 'POST',
    url: new URL(`/devices/${encodeURIComponent(o.deviceId)}/presence`, o.api).href,
    body: { interval: o.intervalSeconds },
    ...(o.secret !== undefined ? { authorization: `Device ${o.secret}` } : {}),
    ...(o.cert !== undefined ? { cert: o.cert } : {}),
    ...(o.key !== undefined ? { key: o.key } : {}),
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
}

export interface Heartbeat {
  /** Stops sending (the device goes offline 1.5 × the interval after the last one). */
  stop(): void;
  /** Resolves after the next heartbeat was answered (or failed). */
  readonly sent: Promise<void>;
}

/**
 * Sends a heartbeat now and then every `intervalSeconds`, well inside the 1.5 × grace. A failed
 * one is reported to `onError` and retried sooner (after a tenth of the interval, at most 30 s
 * later), so that a passing network fault does not make the device look offline.
 */
export function startHeartbeat(o: HeartbeatOptions & { onError?: (e: Error) => void }): Heartbeat {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let resolveSent: () => void = () => {};
  const state = { sent: new Promise<void>((r) => (resolveSent = r)) };
  const beat = async () => {
    let delay = o.intervalSeconds * 1000;
    try {
      await sendHeartbeat(o);
    } catch (e) {
      o.onError?.(e instanceof Error ? e : new Error(String(e)));
      delay = Math.min(30_000, delay / 10);
    }
    const done = resolveSent;
    state.sent = new Promise<void>((r) => (resolveSent = r));
    done();
    if (stopped) return;
    timer = setTimeout(() => void beat(), delay);
    timer.unref();
  };
  void beat();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    get sent() {
      return state.sent;
    },
  };
}
