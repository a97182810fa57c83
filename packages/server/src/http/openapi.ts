import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from 'typebox';
import type { Config } from '../core/config.js';
import { version } from '../core/version.js';
import { problemResponse } from './schemas.js';

/** Where the OpenAPI document is served, and the page that renders it. */
export const documentPath = '/openapi.json';
export const docsPath = '/docs';

/** The page's title and the document's `info.title`. */
export const apiTitle = 'Fleetwire API';

/** The top bar's mark, the product's name (in place of the page plugin's own logo). */
const wordmark = '<svg xmlns="http://www.w3.org/2000/svg" width="150" height="32" viewBox="0 0 150 32"><text x="0" y="24" font-family="sans-serif" font-size="24" font-weight="700" fill="#ffffff">Fleetwire</text></svg>';

type Schema = Record<string, unknown>;
type Operation = { parameters?: { in: string; required?: boolean; schema?: Schema }[]; [key: string]: unknown };
export type OpenApiDocument = { openapi: string; info: Schema; servers?: { url: string; description?: string }[]; paths: Record<string, Record<string, Operation>>; components: Schema; [key: string]: unknown };

const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/**
 * The base URL clients reach the API at, for the document's `servers`: FLEETWIRE_PUBLIC_URL when
 * set, else the HTTP listener (its scheme, bound address and the port it actually listens on; a
 * wildcard address becomes `localhost`, since 0.0.0.0 is nowhere to send a request).
 */
export function serverUrl(config: Pick<Config, 'publicUrl' | 'host' | 'httpPort' | 'httpTlsCert'>, listening?: AddressInfo | string | null): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  const port = listening && typeof listening === 'object' ? listening.port : config.httpPort;
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '';
  const host = wildcard ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${config.httpTlsCert ? 'https' : 'http'}://${host}:${port}`;
}

/**
 * The route's schema as the document shows it (the route itself is left as it is):
 * - a wildcard (`/channels/:id/messages/*`) becomes a named path parameter, the name given by the
 *   `title` of the `*` parameter's schema (`path` without one): `{*}` is no OpenAPI path template;
 * - a public route (`config.auth: 'none'`) says so with `security: []` (no credentials at all)
 *   unless its schema names one, where the others carry the schemes `installAuth` set;
 * - a route that reads its body as bytes and lists what it `consumes` documents that body;
 * - every operation documents 500, the problem any route may answer when something breaks.
 */
export function documentedRoute({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }): { schema: FastifySchema; url: string } {
  if (!schema || (schema as { hide?: boolean }).hide) return { schema, url };
  const out = { ...schema } as Schema;
  if (url.includes('*')) {
    const params = (schema.params ?? { type: 'object', properties: {} }) as { properties?: Record<string, Schema>; required?: string[] };
    const wildcard = params.properties?.['*'] ?? { type: 'string' };
    const name = typeof wildcard.title === 'string' ? wildcard.title : 'path';
    const { title: _title, ...described } = wildcard;
    const properties = { ...Object.fromEntries(Object.entries(params.properties ?? {}).filter(([k]) => k !== '*')), [name]: described };
    out.params = { ...params, properties, required: [...(params.required ?? []).filter((k) => k !== '*'), name] };
    url = url.replace('*', `:${name}`);
  }
  // a public route that names its own scheme (a TLS client certificate) keeps it
  if (route.config?.auth === 'none' && !schema.security) out.security = [];
  if (Array.isArray(schema.consumes) && schema.body === undefined) out.body = rawBody(schema.consumes as string[]);
  out.response = { ...(schema.response as Schema | undefined), 500: problemResponse(500) };
  return { schema: out as FastifySchema, url };
}

/**
 * The request body of a route that reads its body as bytes (publishing: no body schema, since the
 * payload is checked against its content type by the messaging core) but says what it `consumes`.
 */
function rawBody(mediaTypes: string[]): Schema {
  const content = Object.fromEntries(mediaTypes.map((type) => [type, { schema: /[/+]json$/.test(type) ? { description: 'A JSON document' } : { type: 'string', contentMediaType: type } }]));
  return { description: 'The body, as bytes of one of these media types', content };
}

/**
 * Whole-document fixes the route schemas cannot express: a query, header or cookie parameter with a
 * default may be left out (the default applies), so it is not `required`, though the route's
 * schema lists it (TypeBox: a property with a default is not optional in the handler's type).
 */
export function finishDocument(doc: OpenApiDocument): OpenApiDocument {
  for (const item of Object.values(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!methods.has(method)) continue;
      for (const p of op.parameters ?? []) if (p.in !== 'path' && p.schema?.default !== undefined) p.required = false;
    }
  }
  return doc;
}

/** The document as served to one request: the shared, generated one with this platform's `servers`. */
function servedDocument(app: FastifyInstance, config: Config, doc: OpenApiDocument): OpenApiDocument {
  const { openapi, info, ...rest } = doc;
  return { openapi, info, servers: [{ url: serverUrl(config, app.server.address()), description: 'This platform' }], ...rest };
}

/**
 * The OpenAPI 3.1 document generated from the route schemas, at `/openapi.json`, and the page that
 * renders it at `/docs` (Swagger UI, every asset served from here: nothing from a CDN). Register it
 * before the routes: @fastify/swagger records the routes added after it.
 */
export async function installOpenApi(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: apiTitle,
        version,
        description: 'Management API of the Fleetwire IoT platform, and publishing and reading messages over HTTP. Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      tags: [
        { name: 'operations', description: 'Probes, metrics and this document' },
        { name: 'auth', description: 'Logging in, sessions and personal access tokens' },
        { name: 'users', description: 'User accounts' },
        { name: 'organizations', description: 'Organizations, their members and invitations' },
        { name: 'devices', description: 'Devices and their secrets' },
        { name: 'presence', description: 'Which devices are online, idle or offline, their history and the fleet summary' },
        { name: 'channels', description: 'Channels messages are published on' },
        { name: 'groups', description: 'Groups of devices' },
        { name: 'connections', description: 'Which devices may publish or subscribe on which channels' },
        { name: 'messages', description: 'Publishing and reading messages, and the dead letters the writer set aside' },
        { name: 'twins', description: 'Device twins: desired and reported state, their delta, history and fleet queries (docs/twins.md)' },
        { name: 'events', description: "The organization's fleet events and audit log, stored and live" },
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An access token from POST /auth/token, or a personal access token (fwp_…)' },
          device: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'Device credentials: `Device <secret>`, `Thing <secret>` or `Basic base64(<device id>:<secret>)`' },
          // OpenAPI 3.1's scheme for a TLS client certificate (the swagger plugin's types know 3.0's only)
          deviceCertificate: { type: 'mutualTLS', description: 'A device certificate the platform issued, as the TLS client certificate over HTTPS (docs/identity.md)' } as never,
        },
      },
    },
    // shared schemas keep their `$id` as their component name (`Problem`), not `def-0`
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: documentedRoute,
    transformObject: (generated) => finishDocument(('openapiObject' in generated ? generated.openapiObject : generated.swaggerObject) as unknown as OpenApiDocument) as never,
  });

  // the page and its assets are public
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith(docsPath)) route.config = { ...route.config, auth: 'none' };
  });
  await app.register(swaggerUi, {
    routePrefix: docsPath,
    theme: { title: apiTitle },
    logo: { type: 'image/svg+xml', content: Buffer.from(wordmark), href: docsPath, target: '_self' },
    // `urls` (not `url`, which the plugin points at its own /docs/json) makes the page load /openapi.json
    uiConfig: { urls: [{ url: documentPath, name: apiTitle }], docExpansion: 'list', deepLinking: true },
    // no validator badge: it would send the document to a third party
    validatorUrl: false,
    transformSpecification: (doc) => servedDocument(app, config, doc as OpenApiDocument),
  });

  app.get(documentPath, {
    config: { auth: 'none' },
    schema: {
      tags: ['operations'],
      operationId: 'getOpenApiDocument',
      summary: 'This OpenAPI document',
      description: 'The OpenAPI 3.1 document of this API, generated from the route schemas; `servers` names this platform (FLEETWIRE_PUBLIC_URL, or the HTTP listener).',
      response: { 200: Type.Object({}, { additionalProperties: true, description: 'The OpenAPI document' }) },
    },
  }, async () => servedDocument(app, config, app.swagger() as unknown as OpenApiDocument));
}
