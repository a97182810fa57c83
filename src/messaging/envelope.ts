/** How a message travels inside Fleetwire, whatever protocol brought it. */
export type Protocol = 'http' | 'ws' | 'mqtt' | 'coap';

export interface Envelope {
  /** UUID v7, stamped on arrival. */
  id: string;
  org: string;
  channel: string;
  /** Normalised subtopic: segments joined by `/`, no empty segments; '' when none. */
  subtopic: string;
  /** Device id, or `user:<id>` when a user published with a token. */
  publisher: string;
  protocol: Protocol;
  /** Travels with the message and is never guessed downstream. */
  contentType: string;
  payload: Buffer;
  /** Unix milliseconds. */
  receivedAt: number;
}
