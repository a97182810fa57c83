import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';
import type { Principal } from '../auth/service.js';
import type { OrgAccess } from '../orgs/service.js';
import type { Action } from '../auth/permissions.js';
import type { Platform } from '../platform.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    orgAccess?: OrgAccess;
  }
  interface FastifyContextConfig {
    /**
     * `none`: public route. `device`: the route reads device credentials or a user token itself
     * (messaging routes). Default `user`: a user's Bearer token is required.
     */
    auth?: 'none' | 'user' | 'device';
    /** For routes under /orgs/{org}: the action the caller's role must allow. */
    action?: Action;
    /**
     * A personal access token may call a route only through an action it grants: a route under
     * /orgs/{org} with `action`, or one marked here (its handler limits what the token sees to
     * its organization). Every other route (the user's own account, tokens, password, sessions,
     * invitations) refuses personal access tokens with 403 auth.token_scope.
     */
    personalTokens?: boolean;
  }
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/**
 * Secure by default: every route needs a user unless its config says `auth: 'none'`, and every
 * route with an `{org}` parameter and an `action` checks the caller's role in that organization.
 */
export function installAuth(app: FastifyInstance, platform: Platform): void {
  // preValidation: callers who may not see an organization learn nothing from its validation errors
  app.addHook('preValidation', async (req) => {
    const cfg = req.routeOptions.config;
    if (cfg.auth === 'none' || cfg.auth === 'device' || req.routeOptions.url === undefined) return;
    const token = bearerToken(req);
    if (!token) throw new AppError('auth.required', 'Send a Bearer token: Authorization: Bearer <access token>');
    req.principal = await platform.auth.authenticate(token);
    const org = (req.params as { org?: string } | undefined)?.org;
    if (cfg.action && org !== undefined) req.orgAccess = await platform.orgs.authorize(req.principal, org, cfg.action);
    else if (req.principal.scope && !cfg.personalTokens) throw new AppError('auth.token_scope', 'A personal access token can only call the routes of the actions it grants; no action covers this route');
  });

  // Document the security requirement of every protected route in the OpenAPI output.
  app.addHook('onRoute', (route) => {
    if (route.config?.auth === 'none') return;
    const security: Record<string, string[]>[] = route.config?.auth === 'device' ? [{ device: [] }, { bearer: [] }] : [{ bearer: [] }];
    // a route that declares its own (a device's heartbeat: device credentials only) keeps it
    route.schema = { security, ...route.schema } as typeof route.schema;
  });
}

/** The caller of a protected route (set by the preValidation hook). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError('auth.required');
  return req.principal;
}

/** The organization a route with `action` runs in, already authorized. */
export function orgOf(req: FastifyRequest): OrgAccess {
  if (!req.orgAccess) throw new AppError('org.not_found');
  return req.orgAccess;
}

/** Platform-admin-only routes. */
export function requirePlatformAdmin(req: FastifyRequest): Principal {
  const p = principalOf(req);
  if (p.platformRole !== 'admin' || p.scope) throw new AppError('auth.forbidden', 'Only platform admins may do this');
  return p;
}
