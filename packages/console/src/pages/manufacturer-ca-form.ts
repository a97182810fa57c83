// What the manufacturer CA forms send and how they read the platform's refusal (docs/identity.md,
// "With a factory certificate"): the allow-list typed one pattern a line or separated by commas,
// and the field a refusal concerns, so that it is shown there. Pure, for the console's unit tests.

/** The fields of the add and edit forms a refusal can concern. */
export type CaField = 'name' | 'certificate' | 'serials' | 'channels' | 'groups';

/** The API's property names, as a validation error's path or a detail's prefix names them. */
const fieldOfProperty: Record<string, CaField> = { name: 'name', certificate: 'certificate', serials: 'serials', channel_ids: 'channels', group_ids: 'groups' };

/** The codes that concern one field whatever their detail says. */
const fieldOfCode: Record<string, CaField> = {
  'manufacturer_ca.invalid': 'certificate', // not one PEM certificate, not a CA, expired
  'manufacturer_ca.exists': 'certificate', // the same CA (by fingerprint) is registered already
  'channel.not_found': 'channels',
  'group.not_found': 'groups',
};

/** Serial patterns typed one a line or separated by commas: trimmed, empty ones and repeats dropped, in the order given. */
export function serialsFromText(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
}

/** The allow-list as the edit form shows it: one pattern a line. */
export function serialsToText(serials: readonly string[]): string {
  return serials.join('\n');
}

/**
 * The field a refusal of POST or PATCH …/manufacturer-cas concerns, or undefined when it is the
 * form's as a whole: by its code, else by the path of its first validation error (`body/serials/0`),
 * else by the property its detail names (`body must have required property 'name'`, `serials: …`).
 */
export function fieldOfProblem(problem: unknown): CaField | undefined {
  if (!problem || typeof problem !== 'object') return undefined;
  const p = problem as { code?: unknown; detail?: unknown; errors?: { path?: unknown }[] };
  const byCode = typeof p.code === 'string' ? fieldOfCode[p.code] : undefined;
  if (byCode) return byCode;
  const path = p.errors?.[0]?.path;
  if (typeof path === 'string') {
    const property = path.replace(/^body/, '').split('/').find(Boolean);
    if (property && fieldOfProperty[property]) return fieldOfProperty[property];
  }
  if (typeof p.detail === 'string') {
    const named = /required property '(\w+)'/.exec(p.detail)?.[1] ?? /^(\w+):/.exec(p.detail)?.[1];
    if (named && fieldOfProperty[named]) return fieldOfProperty[named];
  }
  return undefined;
}

/** A fingerprint cut short for a table (the first 16 hex digits), the whole one kept for its title and copy button. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.length > 16 ? `${fingerprint.slice(0, 16)}…` : fingerprint;
}

/** The CA's subject in one line: the API gives one `key=value` a line. */
export function subjectLine(subject: string): string {
  return subject
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .join(', ');
}
