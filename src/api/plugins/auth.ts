/**
 * Cross-cutting auth plugin. Every request needs `Authorization: Bearer <token>` unless its
 * route says `config: { access: 'public' }` (health probes) or its path is under one of the
 * public prefixes (the static shells of /docs and /ui, which hold no data). A route lists
 * the roles that may use it in `config.access`; a route without a list is open to every
 * role for GET/HEAD and closed to all for anything else (fail closed).
 * Missing token → 401 API_ERR_UNAUTHENTICATED; bad token → 401 API_ERR_INVALID_TOKEN;
 * wrong role → 403 API_ERR_FORBIDDEN (audited through `onForbidden`). Tokens are never logged.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API_ERR_FORBIDDEN, API_ERR_INVALID_TOKEN, API_ERR_UNAUTHENTICATED } from '../../shared/errors/index.ts';
import { READ_ROLES } from '../types.ts';
import type { Principal, Role } from '../types.ts';
import type { TokenVerifier } from '../auth/verify.ts';

/** Who may call a route: anyone, or principals holding one of the roles. */
export type RouteAccess = 'public' | readonly Role[];

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; null on public routes. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Who may call this route (see the auth plugin). */
    access?: RouteAccess;
  }
}

/** Records a refused (403) request; its failure must not change the answer. */
export type ForbiddenAuditor = (request: FastifyRequest, code: string) => Promise<void>;

/** Options of the auth plugin. */
export interface AuthPluginOptions {
  readonly verify: TokenVerifier;
  /** Path prefixes served without a token (static pages with no data). */
  readonly publicPrefixes?: readonly string[];
  /** Called for every 403, before it is answered (the API audits them). */
  readonly onForbidden?: ForbiddenAuditor;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const MAX_HEADER = 16_384;

function accessOf(request: FastifyRequest, publicPrefixes: readonly string[]): RouteAccess {
  const declared = request.routeOptions.config.access;
  if (declared !== undefined) {
    return declared;
  }
  const url = request.routeOptions.url ?? '';
  if (publicPrefixes.some((p) => url === p || url.startsWith(`${p}/`))) {
    return 'public';
  }
  // Unknown routes: authenticate first, so a stranger cannot probe which routes exist.
  if (request.is404 || request.method === 'GET' || request.method === 'HEAD') {
    return READ_ROLES;
  }
  return [];
}

function tokenOf(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw API_ERR_UNAUTHENTICATED.create();
  }
  const match = header.length <= MAX_HEADER ? BEARER.exec(header) : null;
  if (!match?.[1]) {
    throw API_ERR_INVALID_TOKEN.create('not a bearer token');
  }
  return match[1];
}

/**
 * True when the principal holds one of the roles.
 * @param principal - the caller.
 * @param roles - roles that may act.
 * @returns whether the caller may act.
 */
export function hasRole(principal: Principal, roles: readonly Role[]): boolean {
  return principal.roles.some((r) => roles.includes(r));
}

async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  if (typeof opts.verify !== 'function') {
    throw new TypeError('auth plugin: verify must be a function');
  }
  const publicPrefixes = opts.publicPrefixes ?? [];
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const access = accessOf(request, publicPrefixes);
    if (access === 'public') {
      return;
    }
    const principal = await opts.verify(tokenOf(request));
    request.principal = principal;
    const allowed = request.is404 ? READ_ROLES : access;
    if (!hasRole(principal, allowed)) {
      const err = API_ERR_FORBIDDEN.create(allowed.length > 0 ? allowed.join(', ') : 'none (route closed)');
      await opts.onForbidden?.(request, err.code).catch(() => undefined);
      throw err;
    }
  });
  await Promise.resolve();
}

/** Registers bearer-token auth and role checks for every route. */
export const authPluginFp = fp(authPlugin, {
  fastify: '5.x',
  name: 'fhir-sync-auth',
  dependencies: ['fhir-sync-errors'],
});
