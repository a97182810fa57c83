import type { BrokerPolicy } from './policy.js';
import { aclAllows, type AclRule } from './acl.js';
import { rc, type BrokerMessage } from './types.js';

/**
 * The open listener's policy (development and conformance testing): anonymous clients, any topic,
 * governed by an ACL (no ACL: everything allowed). Messages are routed by the broker itself, and
 * `forward` may carry them to the other nodes of a cluster.
 */
export function openPolicy(rules: AclRule[] | undefined, forward?: (m: BrokerMessage) => void): BrokerPolicy {
  const allowed = (action: 'publish' | 'subscribe', topic: string) => rules === undefined || aclAllows(rules, action, topic);
  return {
    async authenticate() {
      return { ok: true, identity: { kind: 'anonymous' } };
    },
    async publish(_client, message) {
      if (!allowed('publish', message.topic)) return { ok: false, reasonCode: rc.notAuthorized, reason: 'the ACL denies publishing to this topic' };
      forward?.(message);
      return { ok: true, route: 'broker' };
    },
    async subscribe(_client, filter) {
      return allowed('subscribe', filter) ? { ok: true } : { ok: false, reasonCode: rc.notAuthorized, reason: 'the ACL denies this subscription' };
    },
  };
}
