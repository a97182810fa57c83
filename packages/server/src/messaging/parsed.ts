import type { Envelope } from './envelope.js';
import { normalisePayload, type NormalisedPayload } from './payload/index.js';

/**
 * The parse result of an envelope's payload, kept beside the envelope object rather than on it:
 * the messaging service parses every SenML/JSON payload to validate it, and on the in-process bus
 * the writer receives that same object, so it need not parse again. A WeakMap never crosses NATS
 * (the envelope is encoded field by field) and lets the result go with the envelope.
 */
const parsedPayloads = new WeakMap<Envelope, NormalisedPayload>();

/** Remembers what `env`'s payload parsed to; the result must come from `normalisePayload(env.contentType, env.payload, env.receivedAt / 1000)`. */
export function rememberParsedPayload(env: Envelope, parsed: NormalisedPayload): void {
  if (parsed.kind === 'senml' || parsed.kind === 'json') parsedPayloads.set(env, parsed);
}

/**
 * `env`'s payload, normalised: the remembered result when there is one, otherwise parsed now. With
 * no depth bound: the service bounded it, by a setting this process may not share, and a payload
 * too deep to store fails its batch and goes to the dead letters (writer.ts).
 */
export function parsedPayloadOf(env: Envelope): NormalisedPayload {
  return parsedPayloads.get(env) ?? normalisePayload(env.contentType, env.payload, env.receivedAt / 1000, Infinity);
}
