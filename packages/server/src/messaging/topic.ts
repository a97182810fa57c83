/**
 * The one topic scheme: `channels/<channel_id>/messages[/<subtopic>]` is the MQTT topic, the HTTP
 * and WebSocket path and the CoAP path. Subtopic segments map one to one onto NATS subject tokens,
 * so a segment may not hold what NATS gives meaning to (`.`, `*`, `>`) nor white space.
 */

export const maxSubtopicLength = 1024;
export const maxSubtopicSegments = 32;

// eslint-disable-next-line no-control-regex -- control characters are exactly what a segment may not hold
const badSegmentChar = /[.*>\s\u0000-\u001f\u007f]/;

export type SubtopicResult = { ok: true; subtopic: string } | { ok: false; error: string };

/** Normalises a subtopic: splits on `/`, drops empty segments. `wildcards` allows `+` and a final `#` (subscribe). */
export function normaliseSubtopic(raw: string, wildcards = false): SubtopicResult {
  if (raw.length > maxSubtopicLength) return { ok: false, error: `subtopic longer than ${maxSubtopicLength} characters` };
  const segments = raw.split('/').filter((s) => s.length > 0);
  if (segments.length > maxSubtopicSegments) return { ok: false, error: `subtopic has more than ${maxSubtopicSegments} segments` };
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '+' || s === '#') {
      if (!wildcards) return { ok: false, error: `wildcard ${s} is only allowed when subscribing` };
      if (s === '#' && i !== segments.length - 1) return { ok: false, error: '# must be the last segment' };
      continue;
    }
    if (s.includes('+') || s.includes('#')) return { ok: false, error: `segment ${JSON.stringify(s)}: + and # must be whole segments` };
    if (badSegmentChar.test(s)) return { ok: false, error: `segment ${JSON.stringify(s)} may not contain '.', '*', '>', white space or control characters` };
  }
  return { ok: true, subtopic: segments.join('/') };
}

/** Whether a normalised subtopic matches a normalised filter (`+` one segment, `#` the rest, including none). */
export function subtopicMatches(filter: string, subtopic: string): boolean {
  if (filter === '#') return true;
  if (filter === subtopic) return true;
  const f = filter === '' ? [] : filter.split('/');
  const s = subtopic === '' ? [] : subtopic.split('/');
  for (let i = 0; i < f.length; i++) {
    const seg = f[i]!;
    if (seg === '#') return true;
    if (i >= s.length) return false;
    if (seg !== '+' && seg !== s[i]) return false;
  }
  return f.length === s.length;
}

export function hasWildcard(filter: string): boolean {
  return filter === '#' || filter === '+' || filter.startsWith('+/') || filter.endsWith('/#') || filter.endsWith('/+') || filter.includes('/+/');
}

/** `channels/<id>/messages[/<subtopic>]` → its parts, or undefined when the topic is not of that shape. */
export function parseChannelTopic(topic: string): { channel: string; rest: string } | undefined {
  const m = /^\/?channels\/([^/]+)\/messages(?:\/(.*))?$/.exec(topic);
  return m ? { channel: m[1]!, rest: m[2] ?? '' } : undefined;
}

export function channelTopic(channel: string, subtopic: string): string {
  return subtopic ? `channels/${channel}/messages/${subtopic}` : `channels/${channel}/messages`;
}
