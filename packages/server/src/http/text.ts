import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';

/**
 * Text the API stores or filters by must be well-formed Unicode without NUL: PostgreSQL cannot
 * store U+0000 in text or jsonb (it answered 500), and a lone surrogate or a byte that is not UTF-8
 * would be replaced by U+FFFD on the way in, so the client would get back something else than it sent.
 */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain NUL (U+0000)';
  if (loneSurrogate.test(s)) return 'must be well-formed Unicode (no lone surrogate)';
  return undefined;
}

/** The path of the first bad string (key or value) in a parsed JSON value, walked without recursion. */
function findBadText(value: unknown, root: string): { path: string; problem: string } | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { path, problem };
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const [k, child] of Object.entries(v)) {
        const problem = textProblem(k);
        if (problem) return { path: `${path}/${k.replace(/[^\x20-\x7e]/g, '?')}`, problem: `key ${problem}` };
        stack.push([child, `${path}/${k}`]);
      }
    }
  }
  return undefined;
}

/** A percent-encoded query that does not decode to UTF-8 (`%FF`, an encoded surrogate) would be decoded with U+FFFD or left as it is. */
function rawQueryIsUtf8(url: string): boolean {
  const q = url.indexOf('?');
  if (q < 0 || !url.includes('%', q)) return true;
  try {
    decodeURIComponent(url.slice(q + 1));
    return true;
  } catch {
    return false;
  }
}

function check(req: FastifyRequest): void {
  if (!rawQueryIsUtf8(req.raw.url ?? '')) throw new AppError('request.invalid', 'The query string is not valid percent-encoded UTF-8');
  for (const [where, value] of [['querystring', req.query], ['body', req.body], ['params', req.params]] as const) {
    const bad = findBadText(value, '');
    if (bad) throw new AppError('request.invalid', `${where}${bad.path} ${bad.problem}`, { errors: [{ path: `${where}${bad.path}`, message: bad.problem }] });
  }
}

/**
 * JSON bodies are read as bytes and refused with 400 unless they are UTF-8 (RFC 8259 §8.1), and
 * every string of a request (query, path and JSON body: names, tags, metadata, filters) is checked
 * by `textProblem` before validation. Message payloads have their own parser and are not touched.
 */
export function installTextChecks(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    if (!isUtf8(body)) return done(new AppError('request.invalid', 'The JSON body is not valid UTF-8'), undefined);
    parseJson(req, body.toString('utf8'), done);
  });
  // a callback hook: no promise per request (it runs on every publish too, where it finds nothing to walk but the path)
  app.addHook('preValidation', (req, _reply, done) => {
    try {
      check(req);
    } catch (e) {
      return done(e as Error);
    }
    done();
  });
}
