/** How a message travels inside Fleetwire, whatever protocol brought it. */
export type Protocol = 'http' | 'ws' | 'mqtt' | 'coap';

/** MQTT particulars a message keeps across nodes and protocols (absent for other protocols). */
export interface MqttExtras {
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Publisher's client id, for No Local on the node it connected to. */
  origin?: string;
  /** Unix ms (Message Expiry Interval). */
  expiresAt?: number;
  properties?: {
    payloadFormatIndicator?: boolean;
    responseTopic?: string;
    correlationData?: Buffer;
    userProperties?: Record<string, string | string[]>;
  };
}

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
  mqtt?: MqttExtras;
}
