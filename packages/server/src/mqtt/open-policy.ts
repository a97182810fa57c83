import type { BrokerPolicy } from './policy.js';
import { aclAllowsPublish, aclSubscription, type AclRule } from './acl.js';
import { rc } from './types.js';

/**
 * The open listener's policy (development and conformance testing): anonymous clients, any topic,
 * governed by an ACL (no ACL: everything allowed). Messages are routed by the broker itself, in
 * this process only.
 */
export function openPolicy(rules: AclRule[] | undefined): BrokerPolicy {
  const denied = { ok: false as const, reasonCode: rc.notAuthorized, reason: 'the ACL denies publishing to this topic' };
  const mayPublish = (topic: string) => rules === undefined || aclAllowsPublish(rules, topic);
  return {
    async authenticate() {
      return { ok: true, identity: { kind: 'anonymous' } };
    },
    publish(_client, message) {
      return mayPublish(message.topic) ? { ok: true, route: 'broker' } : denied;
    },
    mayPublish(_client, topic) {
      return mayPublish(topic) ? { ok: true } : denied;
    },
    async subscribe(_client, filter) {
      if (rules === undefined) return { ok: true };
      const verdict = aclSubscription(rules, filter);
      // A refused subscription is 0x80 (Unspecified error) at both protocol levels: valid in an MQTT 5
      // SUBACK (§3.9.3), the only failure code of 3.1.1 [MQTT-3.9.3-2], and the one code every client
      // understands (some MQTT 5 clients reject 0x87 in SUBACK). The reason is in the broker's log.
      if (!verdict.allow) return { ok: false, reasonCode: rc.unspecified, reason: 'the ACL denies this subscription' };
      return verdict.exclude.length > 0 ? { ok: true, exclude: verdict.exclude } : { ok: true };
    },
  };
}
