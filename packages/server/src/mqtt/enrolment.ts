// Enrolment and renewal over MQTT (docs/identity.md), for devices that speak nothing else. A device
// without a certificate connects with the user name `enrolment` (its one-time token as password,
// or none when its key was registered), subscribes to `enrolment/+`, publishes its CSR to
// `enrolment/request` and gets its certificate on `enrolment/accepted`, or why not on
// `enrolment/rejected`. Such a connection can do nothing else. A device connected with its
// platform certificate renews the same way on `enrolment/renew`. Replies go to the requesting
// connection only (never through the bus): every connection's `enrolment/…` topics are its own.
import { randomBytes } from 'node:crypto';
import { isAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Caller, Enrolled, IdentityService } from '../identity/index.js';
import type { Broker } from './broker.js';
import { deliverToSession } from './direct.js';
import type { ConnectRequest, PolicyClient, PublishVerdict, SubscribeVerdict } from './policy.js';
import { checkTopicName } from './topics.js';
import { rc, type BrokerMessage, type ClientIdentity } from './types.js';

/** The user name of a connection that comes to enrol. */
export const enrolmentUsername = 'enrolment';

const prefix = 'enrolment/';
const accepted = 'enrolment/accepted';
const rejected = 'enrolment/rejected';
/** Largest request, bytes: a P-256 CSR in PEM is under 1 KiB. */
const maxRequestBytes = 16 * 1024;

type Outcome = { result: 'accepted'; enrolled: Enrolled } | { result: 'rejected'; code: string; message: string; details?: Record<string, unknown> };

interface Request {
  csr: string;
  serial?: string;
  client_token?: string;
}

/** The request's JSON, or why it is none. */
function readRequest(payload: Buffer): Request | string {
  if (payload.length > maxRequestBytes) return `the request is larger than ${maxRequestBytes} bytes`;
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'the request is JSON: {"csr": "<PKCS#10 PEM>", "serial"?: "…", "client_token"?: "…"}';
  }
  const r = body as Partial<Record<keyof Request, unknown>> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r) || typeof r.csr !== 'string') return 'csr: a PKCS#10 PEM string';
  if (r.serial !== undefined && (typeof r.serial !== 'string' || r.serial.length === 0 || r.serial.length > 128)) return 'serial: a string of 1 to 128 characters';
  if (r.client_token !== undefined && (typeof r.client_token !== 'string' || r.client_token.length > 64)) return 'client_token: a string of at most 64 characters';
  return r as Request;
}

export interface EnrolmentTopics {
  /** Authenticates a connection that comes to enrol; undefined when the request is not one. */
  authenticate(req: ConnectRequest): { ok: true; identity: ClientIdentity } | { ok: false; reasonCode: number; reason: string } | undefined;
  /** A PUBLISH to `enrolment/…`: `request` from an enrolling connection, `renew` from a device with its platform certificate. */
  publish(client: PolicyClient, message: BrokerMessage, certificate: { deviceId: string; serial: string } | undefined): PublishVerdict;
  /** Whether `filter` is an enrolment reply filter (undefined: not an enrolment filter at all). */
  subscribe(filter: string): SubscribeVerdict | undefined;
}

export function enrolmentTopics(deps: { identity: IdentityService; broker: () => Broker; log: Logger }): EnrolmentTopics {
  /** The token an enrolling connection brought (never stored: a restored session has none), by its identity object. */
  const tokens = new WeakMap<ClientIdentity, string>();
  /** Where each enrolling connection connected from, for the rate limit and the audit trail. */
  const remotes = new WeakMap<ClientIdentity, string>();
  /** Connections with a request being answered: one at a time each. */
  const busy = new WeakSet<ClientIdentity>();

  /** Sends the reply to the connection's own session, through its first subscription that matches; false when none does. */
  const reply = (client: PolicyClient, topic: string, outcome: Outcome, request: { correlationData?: Buffer; clientToken?: string }): boolean => {
    const session = deps.broker().sessions.get(client.clientId);
    if (!session || session.identity !== client.identity) return false;
    const body = outcome.result === 'accepted' ? { result: 'accepted', ...outcome.enrolled } : { result: 'rejected', code: outcome.code, message: outcome.message, ...outcome.details };
    const message: BrokerMessage = {
      topic,
      payload: Buffer.from(JSON.stringify({ ...body, ...(request.clientToken !== undefined ? { client_token: request.clientToken } : {}) })),
      qos: 1,
      retain: false,
      properties: { contentType: 'application/json', ...(request.correlationData ? { correlationData: request.correlationData } : {}) },
    };
    return deliverToSession(session, message);
  };

  return {
    authenticate(req) {
      if (req.username !== enrolmentUsername || req.meta.certificateCn) return undefined;
      if (!req.cleanStart) return { ok: false, reasonCode: rc.notAuthorized, reason: 'an enrolment connection keeps no session: connect with a clean start' };
      const identity: ClientIdentity = { kind: 'enrolment', connection: randomBytes(9).toString('base64url') };
      const token = req.password?.toString('utf8');
      if (token) tokens.set(identity, token);
      if (req.meta.remoteAddress) remotes.set(identity, req.meta.remoteAddress);
      return { ok: true, identity };
    },

    publish(client, message, certificate) {
      const operation = message.topic.slice(prefix.length);
      const enrolling = client.identity.kind === 'enrolment';
      if (enrolling ? operation !== 'request' : operation !== 'renew' || !certificate) {
        const reason = enrolling ? 'an enrolment connection publishes its request to enrolment/request only' : certificate ? 'a device renews on enrolment/renew' : 'renewal over MQTT needs the connection made with the platform certificate to renew';
        return { ok: false, reasonCode: rc.notAuthorized, reason };
      }
      if (busy.has(client.identity)) return { ok: false, reasonCode: rc.quotaExceeded, reason: 'one request at a time: wait for its reply' };
      const responseTopic = message.properties?.responseTopic;
      if (responseTopic !== undefined && (!responseTopic.startsWith(prefix) || !checkTopicName(responseTopic).ok)) {
        return { ok: false, reasonCode: rc.topicNameInvalid, reason: 'the response topic of an enrolment request is an enrolment/… topic' };
      }
      const request = readRequest(message.payload);
      const correlation = { ...(message.properties?.correlationData ? { correlationData: message.properties.correlationData } : {}) };
      const answer = (outcome: Outcome, clientToken?: string) => {
        const topic = responseTopic ?? (outcome.result === 'accepted' ? accepted : rejected);
        if (!reply(client, topic, outcome, { ...correlation, ...(clientToken !== undefined ? { clientToken } : {}) })) {
          deps.log.info({ clientId: client.clientId, topic }, 'MQTT enrolment reply not sent: the client is gone or not subscribed to it');
        }
      };
      if (typeof request === 'string') {
        answer({ result: 'rejected', code: 'request.invalid', message: request });
        return { ok: true, route: 'policy' };
      }
      const remote = client.identity.kind === 'enrolment' ? remotes.get(client.identity) : undefined;
      const token = client.identity.kind === 'enrolment' ? tokens.get(client.identity) : undefined;
      const caller: Caller = { actor: certificate ? 'device' : token ? 'token' : 'key', ...(remote !== undefined ? { remote } : {}), transport: 'mqtt' };
      busy.add(client.identity);
      const work = certificate
        ? deps.identity.renew({ presented: certificate, csr: request.csr }, caller)
        : deps.identity.enrol({ csr: request.csr, ...(token !== undefined ? { token } : {}), ...(request.serial !== undefined ? { serial: request.serial } : {}) }, caller);
      work.then(
        (enrolled) => answer({ result: 'accepted', enrolled }, request.client_token),
        (e: unknown) => {
          if (!isAppError(e)) deps.log.error({ err: e, clientId: client.clientId }, 'MQTT enrolment failed');
          answer(isAppError(e) ? { result: 'rejected', code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } : { result: 'rejected', code: 'internal', message: 'the enrolment failed: try again' }, request.client_token);
        },
      ).finally(() => busy.delete(client.identity));
      return { ok: true, route: 'policy' };
    },

    subscribe(filter) {
      if (!filter.startsWith(prefix)) return undefined;
      const rest = filter.slice(prefix.length);
      return rest === '+' || rest === '#' || rest === 'accepted' || rest === 'rejected' ? { ok: true } : { ok: false, reasonCode: rc.topicFilterInvalid, reason: 'enrolment replies are enrolment/accepted and enrolment/rejected (or enrolment/+)' };
    },
  };
}
