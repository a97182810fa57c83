// The web console (packages/console, a single-page app) served by the platform at `/`: its
// index.html for `/` and for any other page a browser asks for that is not a route (the console's
// own paths, `/organizations/…`), its hashed assets under `/assets/`. Nothing it loads comes from
// anywhere else, and the Content-Security-Policy says so to the browser.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';

/** Where `npm run build -w @fleetwire/console` writes the console (the same from src/ and dist/). */
export const consoleDist = fileURLToPath(new URL('../../../console/dist', import.meta.url));

const assetsPrefix = '/assets/';
const assetMaxAgeMs = 365 * 86_400_000; // file names carry a content hash: a new build is a new name
const hostPattern = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The page's policy: scripts, styles, images and connections from this origin only (no inline
 * script, no eval, nothing from a CDN), plus the WebSocket API of the same host. `connect-src 'self'`
 * covers ws(s) of the same origin only in newer browsers, so it is named. No framing, no plugins.
 */
export function contentSecurityPolicy(req: FastifyRequest): string {
  const host = req.headers.host;
  const ws = host && hostPattern.test(host) ? ` ${req.protocol === 'https' ? 'wss' : 'ws'}://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function pageHeaders(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', contentSecurityPolicy(req))
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fleetwire: the console is not built</title></head>
<body><h1>The web console is not built</h1>
<p>This platform serves its API (reference at <a href="/docs">/docs</a>), but the console's files are missing.
Build them with <code>npm run build</code> (or <code>npm run build -w @fleetwire/console</code>) from the repository, then restart <code>fleetwire start</code>.</p>
</body></html>
`;

/** A browser asking for a page (a navigation), not an API client asking for data or a file. */
function wantsPage(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = req.url.split('?')[0]!;
  if (path.startsWith(assetsPrefix) || /\.[A-Za-z0-9]+$/.test(path)) return false;
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

export interface ConsoleOptions {
  /** The built console (index.html and assets/); default: packages/console/dist. */
  dir?: string;
}

export async function installConsole(app: FastifyInstance, options: ConsoleOptions = {}): Promise<void> {
  const dir = options.dir ?? consoleDist;
  const built = existsSync(join(dir, 'index.html'));
  if (!built) app.log.warn({ dir }, 'the web console is not built: / explains how to build it');

  const sendPage = async (req: FastifyRequest, reply: FastifyReply) => {
    pageHeaders(req, reply).header('cache-control', 'no-cache');
    if (!built) return reply.code(503).type('text/html; charset=utf-8').send(notBuiltPage);
    return reply.type('text/html; charset=utf-8').sendFile('index.html', dir, { cacheControl: false });
  };

  // reply.sendFile only: the routes are ours, public and left out of the API document
  if (built) await app.register(fastifyStatic, { root: dir, serve: false });

  app.get('/', { config: { auth: 'none' }, schema: { hide: true } }, sendPage);
  app.get(`${assetsPrefix}*`, { config: { auth: 'none' }, schema: { hide: true } }, async (req, reply) => {
    if (!built) return reply.callNotFound();
    reply.header('x-content-type-options', 'nosniff');
    return reply.sendFile((req.params as { '*': string })['*'], join(dir, 'assets'), { maxAge: assetMaxAgeMs, immutable: true });
  });

  // The console's own paths (a reload on /organizations/…/devices) are not routes: a browser
  // navigating there gets index.html, and the console's router draws the page. Everything else that
  // is not a route keeps its 404 problem.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url !== undefined || !wantsPage(req)) return;
    await sendPage(req, reply);
    return reply;
  });
}
