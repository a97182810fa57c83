import { TopicTrie } from './topic-trie.js';
import { hasWildcard } from './topics.js';
import type { BrokerMessage } from './types.js';

/** Retained messages, one per topic (§3.3.1.3). */
export interface RetainedStore {
  /** Stores the message, or deletes the topic's retained message when the payload is empty [MQTT-3.3.1-10]. */
  set(message: BrokerMessage): Promise<void>;
  /** Retained messages whose topic matches the filter. */
  match(filter: string): Promise<BrokerMessage[]>;
}

/** Retained messages in memory, in a topic tree: a wildcard lookup walks the branches its filter can match, not every topic. */
export class MemoryRetainedStore implements RetainedStore {
  private readonly tree = new TopicTrie<BrokerMessage>();

  async set(message: BrokerMessage): Promise<void> {
    if (message.payload.length === 0) this.tree.delete(message.topic);
    else this.tree.set(message.topic, message);
  }

  async match(filter: string): Promise<BrokerMessage[]> {
    if (!hasWildcard(filter)) {
      const m = this.tree.get(filter);
      return m ? [m] : [];
    }
    const out: BrokerMessage[] = [];
    this.tree.matchFilter(filter, (m) => out.push(m));
    return out;
  }

  get size(): number {
    return this.tree.size;
  }
}
