import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Type } from 'typebox';
import { AppError, isAppError } from '../../core/errors.js';
import type { Platform } from '../../platform.js';
import { problems } from '../schemas.js';
import { certificateOf, clientFromAuthorization } from '../credentials.js';
import { channelAddressOf } from '../address.js';
import type { Envelope } from '../../messaging/envelope.js';
import type { Client, Granted } from '../../messaging/service.js';
import type { LiveSubscription } from '../../messaging/bus.js';
import { hasWildcard, normaliseSubtopic } from '../../core/address.js';
import { mediaTypeOf } from '../../messaging/payload/index.js';
import { truncateUtf8 } from '../../core/text.js';
import { concerns, type AccessChange } from '../../auth/invalidation.js';
import { closeCodeOf, closeCodes as close } from '../websocket-errors.js';


interface WsSession {
  client: Client;
  channel: string;
  /** Normalised subtopic filter (may hold wildcards); the bare channel path receives every message of the channel. */
  filter: string;
  /** Where frames are published: the path's subtopic. */
  subtopic: string;
  canSubscribe: Granted | undefined;
  canPublish: boolean;
  /** The device the client proved to be (undefined for a user): the sessions an access change concerns. */
  deviceId: string | undefined;
  envelope: boolean;
  /** From `?content_type=`; undefined: each frame is taken as the channel's content type. */
  contentType: string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    wsSession?: WsSession;
  }
}

const WsQuery = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Device secret, when the client cannot set the Authorization header' })),
  envelope: Type.Optional(Type.Boolean({ description: 'Send each message as a JSON envelope (id, publisher, subtopic, content type, time, base64 payload) instead of the raw payload' })),
  content_type: Type.Optional(Type.String({ description: "Content type of the frames this client publishes (default: the channel's content_type)" })),
});

/** Types the messaging service parsed as JSON before accepting them: UTF-8 already (RFC 8259 §8.1). */
const parsedAsJson = new Set(['application/json', 'application/senml+json']);

/**
 * Whether a payload goes as a text frame: a textual type, in UTF-8 as a text frame must be (RFC 6455
 * §8.1). Bytes of another textual type are checked, since nothing parsed them; they go as a binary
 * frame when they are not UTF-8, whatever their type says.
 */
function textFrame(env: Envelope): boolean {
  const m = mediaTypeOf(env.contentType);
  return parsedAsJson.has(m) || ((m.startsWith('text/') || m.endsWith('+json')) && isUtf8(env.payload));
}

function envelopeFrame(env: Envelope): string {
  return JSON.stringify({
    id: env.id,
    channel: env.channel,
    subtopic: env.subtopic,
    publisher: env.publisher,
    protocol: env.protocol,
    content_type: env.contentType,
    received_at: new Date(env.receivedAt).toISOString(),
    payload: env.payload.toString('base64'),
  });
}

/** Close reasons are at most 123 bytes (RFC 6455 §5.5). */
function reason(text: string): string {
  return truncateUtf8(text, 123);
}

/**
 * WebSocket adapter: `/ws/channels/{id}/messages[/{subtopic…}]`. A client connected for subscribe
 * receives every message of the channel whose subtopic matches the path (wildcards `+` and `#`
 * allowed); a client connected for publish publishes each frame it sends to the path's subtopic.
 */
export function wsRoutes(app: FastifyInstance, platform: Platform): void {
  const { messaging, bus, messagingMetrics: metrics } = platform;
  const maxBuffered = platform.config.wsMaxBuffered;
  /** Open sockets and what they were granted, for re-checking when access changes. */
  const live = new Map<WebSocket, WsSession>();

  /** A socket whose device lost what it was granted at the upgrade (subscribe, publish) is closed with 4403. */
  const recheck = async (socket: WebSocket, s: WsSession): Promise<void> => {
    let refusal: unknown;
    for (const action of [...(s.canSubscribe ? ['subscribe' as const] : []), ...(s.canPublish ? ['publish' as const] : [])]) {
      try {
        await messaging.authorize(s.client, s.channel, action);
      } catch (e) {
        if (!isAppError(e)) throw e;
        refusal = e;
        break;
      }
    }
    if (refusal === undefined || live.get(socket) !== s) return;
    live.delete(socket);
    const code = (refusal as AppError).code;
    platform.log.info({ channel: s.channel, device: s.deviceId, code }, 'WebSocket closed: access withdrawn');
    socket.close(close.accessWithdrawn, reason(`${code}: access withdrawn`));
  };
  const onChange = (change: AccessChange) => {
    const checks: Promise<void>[] = [];
    for (const [socket, s] of live) {
      if (concerns(change, s.deviceId, s.channel)) checks.push(recheck(socket, s));
    }
    if (checks.length > 0) void Promise.all(checks).catch((e: unknown) => platform.log.error({ err: e }, 're-checking WebSocket sessions after an access change failed'));
  };
  const stopListening = platform.accessChanges.onChange(onChange);
  // a user's socket lives no longer than the login session of the access token it was opened with
  const stopSessions = platform.sessions.onEnded((ended) => {
    for (const [socket, s] of live) {
      if (s.client.kind !== 'user') continue;
      const p = s.client.principal;
      if (p.sessionId === undefined) continue; // a personal access token: revoked on its own
      if ('userId' in ended ? p.userId !== ended.userId : !ended.sessionIds.includes(p.sessionId)) continue;
      live.delete(socket);
      platform.log.info({ channel: s.channel, user: p.userId }, 'WebSocket closed: its session ended');
      socket.close(close.sessionEnded, reason('auth.session_ended: the session of this access token ended'));
    }
  });
  app.addHook('onClose', async () => {
    stopListening();
    stopSessions();
  });

  /** Authorises before the upgrade, so that refusals are ordinary HTTP problem responses. */
  const authorize = async (req: FastifyRequest) => {
    const address = channelAddressOf(req, { ws: true });
    const query = req.query as { authorization?: string; envelope?: boolean; content_type?: string };
    const client = await clientFromAuthorization(req.headers.authorization ?? query.authorization, platform.auth, certificateOf(req, platform.trust.current()));
    const sub = normaliseSubtopic(address.subtopic, true);
    if (!sub.ok) throw new AppError('message.invalid_subtopic', sub.error);
    let canSubscribe: Granted | undefined;
    let canPublish = false;
    let granted: Granted | undefined;
    let refusal: unknown;
    try {
      canSubscribe = await messaging.authorize(client, address.channel, 'subscribe');
    } catch (e) {
      refusal = e;
    }
    if (!hasWildcard(sub.subtopic)) {
      try {
        granted = await messaging.authorize(client, address.channel, 'publish');
        canPublish = true;
      } catch (e) {
        refusal ??= e;
      }
    }
    if (!canSubscribe && !canPublish) throw refusal;
    const deviceId = client.kind === 'user' ? undefined : (canSubscribe ?? granted)!.publisher;
    req.wsSession = { client, channel: address.channel, filter: sub.subtopic === '' ? '#' : sub.subtopic, subtopic: sub.subtopic, canSubscribe, canPublish, deviceId, envelope: query.envelope === true, contentType: query.content_type || undefined };
  };

  const handler = (socket: WebSocket, req: FastifyRequest) => {
    const s = req.wsSession!;
    const log = req.log;
    let subscription: LiveSubscription | undefined;
    const deliver = (env: Envelope) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > maxBuffered) {
        metrics.dropped.inc({ reason: 'slow_consumer' });
        log.warn({ channel: s.channel, buffered: socket.bufferedAmount }, 'closing a slow WebSocket consumer');
        subscription?.unsubscribe();
        socket.close(close.tryAgainLater, 'slow consumer');
        return;
      }
      if (s.envelope) socket.send(envelopeFrame(env));
      else socket.send(env.payload, { binary: !textFrame(env) });
      metrics.delivered.inc({ protocol: 'ws' });
    };
    if (s.canSubscribe) {
      void bus.subscribe(s.channel, s.filter, deliver).then(
        (sub) => {
          if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) subscription = sub;
          else sub.unsubscribe();
        },
        (e: unknown) => {
          log.error({ err: e }, 'WebSocket subscription failed');
          socket.close(close.internal, 'subscription failed');
        },
      );
    }
    // Frames are published one after another, in the order sent.
    let chain = Promise.resolve();
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const payload = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      chain = chain.then(async () => {
        if (!s.canPublish) {
          socket.close(close.policy, reason('this client may not publish here'));
          return;
        }
        try {
          // WebSocket frames are not acknowledged: taken by the bus is enough (its backpressure still applies)
          await messaging.submit({ client: s.client, channel: s.channel, subtopic: s.subtopic, contentType: s.contentType, payload, protocol: 'ws' });
          metrics.received.inc({ protocol: 'ws' });
        } catch (e) {
          const code = isAppError(e) ? e.code : 'internal';
          metrics.rejected.inc({ protocol: 'ws', code });
          log.info({ code, binary: isBinary }, 'WebSocket frame refused');
          socket.close(closeCodeOf(code), reason(`${code}: ${(e as Error).message}`));
        }
      }).catch((e: unknown) => {
        // nothing above should throw; if it does, this client goes, not the process (an unhandled rejection would end it)
        log.error({ err: e }, 'WebSocket frame handling failed');
        socket.terminate();
      });
    });
    live.set(socket, s);
    socket.on('close', () => {
      live.delete(socket);
      subscription?.unsubscribe();
    });
    socket.on('error', (e) => log.info({ err: e }, 'WebSocket error'));
  };

  const description =
    'Upgrade to WebSocket. Credentials in the Authorization header (Device/Thing/Basic/Bearer) or `?authorization=<device secret>`. Subscribers receive every message of the channel on the bare channel path, or those whose subtopic matches the subtopic in the path (`+` one segment, `#` the rest, percent-encoded as %23); publishers send frames that are published to the path\'s subtopic with `content_type`. Slow consumers are closed with code 1013.';
  for (const url of ['/ws/channels/:id/messages', '/ws/channels/:id/messages/*']) {
    app.get(url, {
      websocket: true,
      config: { auth: 'device' },
      preHandler: authorize,
      schema: { tags: ['messages'], summary: 'Subscribe and publish over WebSocket', description, querystring: WsQuery, response: problems(400, 401, 403, 404) },
    }, handler);
  }
}
