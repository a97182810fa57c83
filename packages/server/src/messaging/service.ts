import { AppError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { uuidv7 } from '../core/ids.js';
import type { DenyReason, DeviceAuthorizer, DeviceCredential } from '../auth/decision.js';
import type { DeviceIdentity } from '../auth/access-store.js';
import type { Principal } from '../auth/service.js';
import type { ChannelService } from '../channels/service.js';
import type { OrgService } from '../orgs/service.js';
import { BusOverloadedError, type Accepted, type Bus } from './bus.js';
import type { Envelope, Protocol } from './envelope.js';
import { normaliseSubtopic } from '../core/address.js';
import { mediaTypeOf, normalisePayload, type NormalisedPayload } from './payload/index.js';
import { rememberParsedPayload } from './parsed.js';

/** Who publishes or subscribes: a device with its credential, or a user with a token. */
export type Client =
  | { kind: 'device'; credential: DeviceCredential }
  /** A device the transport has authenticated already (a connected MQTT client). */
  | { kind: 'identified'; device: DeviceIdentity }
  | { kind: 'user'; principal: Principal };

export interface PublishInput {
  client: Client;
  channel: string;
  /** As received (e.g. the rest of the path or topic); normalised here. */
  subtopic: string;
  /** As the protocol carried it; undefined (or blank) when it carried none: the channel's is taken. */
  contentType: string | undefined;
  payload: Buffer;
  protocol: Protocol;
  mqtt?: Envelope['mqtt'];
  /**
   * What `authorize(client, channel, 'publish')` answered for this very request, when the edge asked
   * before it read the payload (HTTP publish): the message is not authorised a second time.
   */
  granted?: Granted;
}

/** Who was allowed, once authorised: the channel's organization, the publisher id stamped on envelopes, and the channel's content type. */
export interface Granted {
  org: string;
  publisher: string;
  /** What the channel takes payloads that come without a content type as. */
  contentType: string;
}

export interface MessagingOptions {
  maxPayloadBytes: number;
  /** Deepest nesting of JSON, SenML JSON and SenML CBOR payloads accepted (defaultMaxPayloadDepth). */
  maxPayloadDepth?: number;
  /**
   * Why new messages are refused right now, or undefined to take them: the writer reports that
   * storage is failing (MessageWriter.health), so that publishers get message.overloaded instead
   * of an acknowledgement for a message that is not being stored. Default: never refused.
   */
  refuse?: () => string | undefined;
  /**
   * Keep each payload's parse beside its envelope for the writer (src/messaging/parsed.ts). Only
   * worth it when the writer receives the same object: on NATS, or with the writer on its thread,
   * the parses would only be kept alive for nothing, for the garbage collector to move. Default true.
   */
  rememberParse?: boolean;
  /** How long `publish` waits for the message to be stored before it refuses with message.overloaded (ms). Default 10 s. */
  storeTimeoutMs?: number;
  /** Told of every message a device published once the bus took it (presence: the device was heard from). Must be cheap and must not throw. */
  deviceSeen?: (deviceId: string, orgId: string, protocol: Protocol) => void;
}

/** A message the bus has taken (live subscribers have it), with the promise of its storage. */
export interface Submitted {
  env: Envelope;
  /** Resolves once the message survives a crash; rejects with message.overloaded when that does not come within the store timeout. */
  stored(): Promise<void>;
}

/** SenML encodings we recognise but do not take: better a clear 415 than storing them as opaque bytes. */
const unsupportedSenml = new Set(['application/senml+xml', 'application/senml-exi', 'application/senml-etch+json', 'application/senml-etch+cbor', 'application/sensml+json', 'application/sensml+cbor', 'application/sensml+xml', 'application/sensml-exi']);

export function denyError(reason: DenyReason): AppError {
  switch (reason) {
    case 'invalid_credentials':
      return new AppError('auth.invalid_credentials', 'Unknown device credentials');
    case 'device_disabled':
      return new AppError('message.device_disabled');
    case 'channel_not_found':
      return new AppError('channel.not_found');
    case 'not_connected':
      return new AppError('message.not_connected');
  }
}

/**
 * The transport-agnostic messaging service: every adapter (HTTP, WebSocket, MQTT, CoAP) calls it to
 * authorise, normalise and hand messages to the bus, and to authorise subscriptions.
 */
export class MessagingService {
  constructor(
    private readonly authorizer: DeviceAuthorizer,
    private readonly orgs: OrgService,
    private readonly channels: ChannelService,
    readonly bus: Bus,
    private readonly clock: Clock,
    private readonly options: MessagingOptions,
  ) {}

  get maxPayloadBytes(): number {
    return this.options.maxPayloadBytes;
  }

  /** Authorises a client for publish or subscribe on a channel; throws the matching AppError when refused. */
  async authorize(client: Client, channel: string, action: 'publish' | 'subscribe'): Promise<Granted> {
    if (client.kind === 'device' || client.kind === 'identified') {
      const d = client.kind === 'device' ? await this.authorizer.authorize(client.credential, channel, action) : await this.authorizer.authorizeDevice(client.device, channel, action);
      if (!d.allow) throw denyError(d.reason);
      return { org: d.orgId, publisher: d.deviceId, contentType: d.contentType };
    }
    const routing = await this.channels.routing(channel).catch(() => undefined);
    if (!routing) throw new AppError('channel.not_found');
    const org = routing.orgId;
    await this.orgs.authorize(client.principal, org, action === 'publish' ? 'messages:publish' : 'messages:read').catch((e: unknown) => {
      // a channel of an organization the user is not in does not exist for them
      throw e instanceof AppError && e.code === 'org.not_found' ? new AppError('channel.not_found') : e;
    });
    return { org, publisher: `user:${client.principal.userId}`, contentType: routing.contentType };
  }

  /** Checks what needs neither the database nor a parse: overload, size, subtopic, a content type that is refused whatever the channel. */
  private precheck(input: Pick<PublishInput, 'subtopic' | 'contentType' | 'payload'>): { subtopic: string; contentType: string | undefined } {
    const refused = this.options.refuse?.();
    if (refused !== undefined) throw new AppError('message.overloaded', refused);
    if (input.payload.length > this.options.maxPayloadBytes) throw new AppError('message.too_large', `The payload is ${input.payload.length} bytes; at most ${this.options.maxPayloadBytes} are accepted`);
    const sub = normaliseSubtopic(input.subtopic);
    if (!sub.ok) throw new AppError('message.invalid_subtopic', sub.error);
    const contentType = input.contentType?.trim() || undefined;
    if (contentType !== undefined) {
      const media = mediaTypeOf(contentType);
      if (unsupportedSenml.has(media)) throw new AppError('message.unsupported_content_type', `${media} is not supported; use application/senml+json or application/senml+cbor`);
    }
    return { subtopic: sub.subtopic, contentType };
  }

  /**
   * Parses a payload by the content type it came with or, when the protocol carried none, by the
   * channel's. Only for an authorised publisher: nobody else makes the platform parse anything.
   */
  private parse(given: string | undefined, channelType: string, payload: Buffer, receivedAt: number): { contentType: string; parsed: NormalisedPayload } {
    const contentType = given ?? channelType;
    const parsed = normalisePayload(contentType, payload, receivedAt / 1000, this.options.maxPayloadDepth);
    if (parsed.kind === 'invalid') throw new AppError('message.invalid_payload', given === undefined ? `${parsed.error} (the channel takes payloads without a content type as ${channelType})` : parsed.error);
    // the type travels with the message as given, but SenML/JSON types in canonical form
    return { contentType: parsed.kind === 'opaque' ? contentType : mediaTypeOf(contentType), parsed };
  }

  /**
   * Authorises, normalises, stamps and hands one message to the bus, and resolves once it is stored:
   * only then may the adapter acknowledge it (HTTP 202, CoAP 2.04).
   */
  async publish(input: PublishInput): Promise<Envelope> {
    const submitted = await this.submit(input);
    await submitted.stored();
    return submitted.env;
  }

  /**
   * As `publish`, but resolves as soon as the bus has taken the message, so that an adapter that
   * pipelines (MQTT: the next packets are handled while a PUBACK waits) acknowledges it later with
   * `stored()`, and one that never acknowledges (QoS 0, WebSocket) does not wait at all.
   */
  async submit(input: PublishInput): Promise<Submitted> {
    const receivedAt = this.clock.now();
    const checked = this.precheck(input);
    const granted = input.granted ?? (await this.authorize(input.client, input.channel, 'publish'));
    const { contentType, parsed } = this.parse(checked.contentType, granted.contentType, input.payload, receivedAt);
    const env: Envelope = {
      id: uuidv7(receivedAt),
      org: granted.org,
      channel: input.channel,
      subtopic: checked.subtopic,
      publisher: granted.publisher,
      protocol: input.protocol,
      contentType,
      payload: input.payload,
      receivedAt,
      ...(input.mqtt ? { mqtt: input.mqtt } : {}),
    };
    // the writer on the in-process bus gets this very object: it reuses the parse (src/storage/rows.ts)
    if (this.options.rememberParse !== false) rememberParsedPayload(env, parsed);
    let accepted: Accepted;
    try {
      accepted = await this.bus.publish(env);
    } catch (e) {
      if (e instanceof BusOverloadedError) throw new AppError('message.overloaded', e.message);
      // the bus is unreachable (NATS down or reconnecting, the bus closing): the publisher may try again, as for a store that is behind
      throw new AppError('message.overloaded', `The message bus did not take the message: ${(e as Error).message}`);
    }
    if (input.client.kind !== 'user') this.options.deviceSeen?.(granted.publisher, granted.org, input.protocol);
    return { env, stored: () => this.stored(accepted) };
  }

  /** The bus's storage promise, bounded by the store timeout. */
  private stored(accepted: Accepted): Promise<void> {
    const timeoutMs = this.options.storeTimeoutMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new AppError('message.overloaded', `The message was not stored within ${timeoutMs} ms; it may still be stored later, so a retry can make a duplicate`)), timeoutMs);
      accepted.stored().then(
        () => (clearTimeout(timer), resolve()),
        (e: unknown) => (clearTimeout(timer), reject(e instanceof AppError ? e : new AppError('message.overloaded', `The message could not be stored: ${(e as Error).message}`))),
      );
    });
  }
}
