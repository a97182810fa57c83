import { hasWildcard, topicMatches } from './topics.js';
import type { BrokerMessage } from './types.js';

/** Retained messages, one per topic (§3.3.1.3). */
export interface RetainedStore {
  /** Stores the message, or deletes the topic's retained message when the payload is empty [MQTT-3.3.1-10]. */
  set(message: BrokerMessage): Promise<void>;
  /** Retained messages whose topic matches the filter. */
  match(filter: string): Promise<BrokerMessage[]>;
}

export class MemoryRetainedStore implements RetainedStore {
  private readonly byTopic = new Map<string, BrokerMessage>();

  async set(message: BrokerMessage): Promise<void> {
    if (message.payload.length === 0) this.byTopic.delete(message.topic);
    else this.byTopic.set(message.topic, message);
  }

  async match(filter: string): Promise<BrokerMessage[]> {
    if (!hasWildcard(filter)) {
      const m = this.byTopic.get(filter);
      return m ? [m] : [];
    }
    const out: BrokerMessage[] = [];
    for (const [topic, m] of this.byTopic) if (topicMatches(filter, topic)) out.push(m);
    return out;
  }

  get size(): number {
    return this.byTopic.size;
  }
}
