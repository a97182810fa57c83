/**
 * Fleetwire's topic scheme, the same on every protocol: `channels/<channel id>/messages[/<subtopic>]`.
 * A subtopic is one or more segments separated by `/`; empty segments are dropped, as the platform
 * drops them.
 */
import { FleetwireError } from './errors.js';

/** Characters the platform refuses in a subtopic segment: `.`, `*`, `>` (bus tokens), white space and control characters. */
const badSegment = /[.*>\s\p{Cc}]/u;

function checkChannel(channel: string): void {
  if (typeof channel !== 'string' || channel.length === 0) throw new FleetwireError('invalid_topic', 'a channel id is required');
  if (/[/+#\s\p{Cc}]/u.test(channel)) throw new FleetwireError('invalid_topic', `${JSON.stringify(channel)} is no channel id (it holds /, +, # or white space)`);
}

/**
 * The subtopic's segments, checked. Wildcards (`+` for one segment, `#` for the rest, MQTT §4.7)
 * only when `filter` is set: a message is published to one topic.
 */
function subtopicSegments(subtopic: string | undefined, filter: boolean): string[] {
  if (subtopic === undefined) return [];
  if (typeof subtopic !== 'string') throw new FleetwireError('invalid_topic', 'a subtopic must be a string');
  const segments = subtopic.split('/').filter((s) => s.length > 0);
  segments.forEach((s, i) => {
    if (s === '+' || s === '#') {
      if (!filter) throw new FleetwireError('invalid_topic', `subtopic ${JSON.stringify(subtopic)}: ${s} is for subscribing, not publishing`);
      // [MQTT-4.7.1-1]: # only as the last level
      if (s === '#' && i !== segments.length - 1) throw new FleetwireError('invalid_topic', `subtopic ${JSON.stringify(subtopic)}: # must be the last segment`);
      return;
    }
    // [MQTT-4.7.1-2]: + and # only as whole levels
    if (s.includes('+') || s.includes('#')) throw new FleetwireError('invalid_topic', `subtopic ${JSON.stringify(subtopic)}: + and # must be whole segments`);
    if (badSegment.test(s)) throw new FleetwireError('invalid_topic', `subtopic ${JSON.stringify(subtopic)}: a segment may not hold . * > white space or control characters`);
  });
  return segments;
}

/** The topic a message is published to. */
export function messageTopic(channel: string, subtopic?: string): string {
  checkChannel(channel);
  return ['channels', channel, 'messages', ...subtopicSegments(subtopic, false)].join('/');
}

/**
 * The filter a subscription uses. No subtopic: every message on the channel, whatever its subtopic
 * (`channels/<id>/messages/#` also matches `channels/<id>/messages`, [MQTT-4.7.1-2]).
 */
export function messageFilter(channel: string, subtopic?: string): string {
  checkChannel(channel);
  const segments = subtopic === undefined ? ['#'] : subtopicSegments(subtopic, true);
  return ['channels', channel, 'messages', ...segments].join('/');
}

/** The channel and subtopic of a message topic, or undefined for a topic outside the scheme. */
export function parseMessageTopic(topic: string): { channel: string; subtopic: string } | undefined {
  const parts = topic.split('/');
  if (parts.length < 3 || parts[0] !== 'channels' || parts[2] !== 'messages' || !parts[1]) return undefined;
  return { channel: parts[1], subtopic: parts.slice(3).join('/') };
}

/** Whether a topic matches a filter (MQTT §4.7). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // the parent level too: `a/#` matches `a`
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
