import { AppError } from '../core/errors.js';
import type { Json } from './document.js';

/**
 * Fleet queries over twins: conditions such as `reported.firmware.version = 1.4.2`,
 * `desired.mode != reported.mode`, `reported.battery < 20`, `tags.site = berlin` or
 * `reported.gps exists`. A value is JSON when it parses as JSON (`14`, `true`, `null`, `"14"`),
 * a field of the twin when it names one (`reported.mode`), and text otherwise.
 */
export const twinSections = ['desired', 'reported', 'tags'] as const;
export type TwinSection = (typeof twinSections)[number];

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type TwinCondition =
  | { section: TwinSection; path: string[]; op: '=' | '!='; value: Json }
  | { section: TwinSection; path: string[]; op: '<' | '<=' | '>' | '>='; value: number }
  | { section: TwinSection; path: string[]; op: '=' | '!='; ref: { section: TwinSection; path: string[] } }
  | { section: TwinSection; path: string[]; op: 'exists' | 'missing' };

/** Keys a query path may name: what goes into SQL JSON paths as it is. */
const keyPattern = /^[A-Za-z0-9_-]{1,64}$/;
const maxPathKeys = 10;
export const maxConditions = 8;

function field(text: string): { section: TwinSection; path: string[] } | undefined {
  const [section, ...path] = text.split('.');
  if (!(twinSections as readonly string[]).includes(section!)) return undefined;
  if (path.length === 0 || path.length > maxPathKeys || !path.every((k) => keyPattern.test(k))) return undefined;
  return { section: section as TwinSection, path };
}

const conditionPattern = /^\s*(\S+)\s*(!=|<=|>=|=|<|>|\s+exists|\s+missing)\s*(.*?)\s*$/s;

/** One condition, or a clear error naming what is wrong with it. */
export function parseCondition(text: string): TwinCondition {
  const bad = (why: string) => new AppError('twin.invalid_query', `${JSON.stringify(text)}: ${why}`);
  const m = conditionPattern.exec(text);
  if (!m) throw bad('a condition is `<section>.<path> <op> <value>` with op one of = != < <= > >=, or `<section>.<path> exists|missing`');
  const [, lhs, rawOp, rhs] = m as unknown as [string, string, string, string];
  const f = field(lhs);
  if (!f) throw bad(`the field is desired.…, reported.… or tags.… with at most ${maxPathKeys} keys of letters, digits, _ and -`);
  const op = rawOp.trim();
  if (op === 'exists' || op === 'missing') {
    if (rhs !== '') throw bad(`${op} takes no value`);
    return { ...f, op };
  }
  if (rhs === '') throw bad('the value is missing');
  if (op === '=' || op === '!=') {
    const ref = field(rhs);
    if (ref) return { ...f, op, ref };
    return { ...f, op, value: literal(rhs) };
  }
  const value = literal(rhs);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`${op} compares with a number`);
  return { ...f, op: op as '<' | '<=' | '>' | '>=', value };
}

function literal(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

export function parseConditions(texts: readonly string[]): TwinCondition[] {
  if (texts.length > maxConditions) throw new AppError('twin.invalid_query', `at most ${maxConditions} conditions`);
  return texts.map(parseCondition);
}
