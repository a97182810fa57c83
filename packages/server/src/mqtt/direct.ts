import { splitKey } from './broker.js';
import type { Session } from './session.js';
import { topicMatches } from './topics.js';
import type { BrokerMessage } from './types.js';

/**
 * Gives a message to one session, through its first plain subscription that matches the topic (at
 * that subscription's QoS, at most 1): for what the platform sends a client itself, past the bus
 * and the channels (enrolment replies, twin replies and notifications). False when no
 * subscription of the session matches.
 */
export function deliverToSession(session: Session, message: BrokerMessage): boolean {
  for (const [key, opts] of session.subscriptions) {
    const { filter, group } = splitKey(key);
    if (group !== undefined || !topicMatches(filter, message.topic)) continue;
    session.deliver(message, opts.qos === 0 ? 0 : 1, false, opts.subscriptionId !== undefined ? [opts.subscriptionId] : undefined);
    return true;
  }
  return false;
}
