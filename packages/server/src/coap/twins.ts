// Device twins over CoAP (docs/twins.md), on the paths of the address scheme:
//   GET                devices/<id>/twin[/<name>]?auth=<secret>              the twin (the device's view)
//   POST, PATCH, iPATCH devices/<id>/twin[/<name>]?auth=<secret>             an update: {"reported": …}
//   GET + Observe: 0   devices/<id>/twin[/<name>]/update/delta?auth=<secret> the delta now, then each new one
// Observing the delta is the catch-up: the registration's answer is the current delta with its
// version, so a device that slept misses nothing, and notifications never go back in version.
import { AppError } from '../core/errors.js';
import type { DeviceAuthorizer } from '../auth/decision.js';
import { parseJsonText } from '../messaging/payload/json.js';
import { defaultTwin, isObject, type TwinService, type TwinUpdate } from '../twins/index.js';
import { CoapRefusal } from './errors.js';
import { option, uint, type OutOption } from './message.js';
import type { Notification } from './observers.js';

/** CoAP Content-Format of application/json (RFC 7252 §12.3). */
const jsonFormat = 50;
const maxRequestBytes = 1024 * 1024 + 4096;

export interface TwinResource {
  device: string;
  name: string;
  /** The delta resource (`…/update/delta`), which may be observed; otherwise the twin itself. */
  delta: boolean;
}

/** The twin resource of the segments after `devices/<id>/twin`, or why there is none. */
export function twinResource(device: string, rest: readonly string[]): TwinResource {
  const named = rest.length === 1 || rest.length === 3;
  const name = named ? rest[0]! : defaultTwin;
  const tail = named ? rest.slice(1) : rest;
  if (tail.length === 0) return { device, name, delta: false };
  if (tail.length === 2 && tail[0] === 'update' && tail[1] === 'delta') return { device, name, delta: true };
  throw new AppError('route.not_found', 'CoAP twin resources are devices/<id>/twin[/<name>] (GET, POST, PATCH) and devices/<id>/twin[/<name>]/update/delta (GET, Observe)');
}

export interface Reply {
  code: string;
  options?: OutOption[];
  payload?: Buffer;
}

const json = (code: string, body: unknown, options: OutOption[] = []): Reply => ({
  code,
  options: [...options, { name: option.contentFormat, value: uint(jsonFormat) }],
  payload: Buffer.from(JSON.stringify(body)),
});

/** The device a request's `?auth=<secret>` proves, which must be the one the path names. */
export async function twinDevice(authorizer: DeviceAuthorizer, auth: string | undefined, target: TwinResource): Promise<{ orgId: string; deviceId: string }> {
  if (!auth) throw new AppError('auth.required', 'Send the device secret as ?auth=<secret>');
  const who = await authorizer.identify({ kind: 'secret', secret: auth });
  if (!who.ok) throw new AppError(who.reason === 'device_disabled' ? 'message.device_disabled' : 'auth.invalid_credentials');
  if (who.device.id !== target.device) throw new AppError('device.not_found', 'a device reads and writes its own twin only');
  return { orgId: who.device.orgId, deviceId: who.device.id };
}

export async function getTwin(twins: TwinService, who: { orgId: string; deviceId: string }, target: TwinResource): Promise<Reply> {
  const doc = await twins.get(who.orgId, who.deviceId, target.name, 'device', true);
  if (target.delta) return json('2.05', { version: doc.version, state: doc.delta });
  return json('2.05', doc);
}

export async function updateTwin(twins: TwinService, who: { orgId: string; deviceId: string }, target: TwinResource, payload: Buffer, contentFormat: number | undefined): Promise<Reply> {
  if (target.delta) throw new CoapRefusal('4.05', 'coap.method_not_allowed', 'the delta is read (GET, Observe); updates go to devices/<id>/twin[/<name>]');
  if (contentFormat !== undefined && contentFormat !== jsonFormat) throw new AppError('request.unsupported_media_type', 'a twin update is JSON (Content-Format 50)');
  if (payload.length > maxRequestBytes) throw new AppError('request.too_large', `a twin update is at most ${maxRequestBytes} bytes`);
  const parsed = parseJsonText(payload, 64, true);
  if (!parsed.ok) throw new AppError('twin.invalid_update', parsed.error);
  if (!isObject(parsed.value)) throw new AppError('twin.invalid_update', 'an update is a JSON object: {"reported": {…}, "version"?: n}');
  const { version, ...update } = parsed.value;
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 0)) throw new AppError('twin.invalid_update', 'version is the twin version read, an integer');
  const { twin, changed } = await twins.update(who.orgId, who.deviceId, target.name, update as TwinUpdate, { actor: { kind: 'device', id: who.deviceId }, trustedDevice: true, ...(version !== undefined ? { version } : {}) });
  return json('2.04', { version: twin.version, delta: changed ? changed.delta : twins.view(twin, 'device').delta });
}

/**
 * The feed of an observation of a twin's delta: a notification for each desired change, none
 * older than one sent already (the registration's answer included, at `since`).
 */
export function deltaFeed(twins: TwinService, who: { deviceId: string }, target: TwinResource, since: number): (deliver: (n: Notification) => void) => { unsubscribe(): void } {
  return (deliver) => {
    let last = since;
    const stop = twins.watch((n) => {
      if (n.deviceId !== who.deviceId || n.name !== target.name || !n.delta || Object.keys(n.delta).length === 0 || n.version <= last) return;
      last = n.version;
      deliver({ id: n.version.toString(16).padStart(16, '0'), contentType: 'application/json', payload: Buffer.from(JSON.stringify({ version: n.version, state: n.delta })) });
    });
    return { unsubscribe: stop };
  };
}
