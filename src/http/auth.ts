/**
 * Bearer-token authentication for the HTTP door (auth.tokensFile,
 * auth.adminTokensFile). What each route needs:
 *   open   /healthz, /readyz (probes); /metrics only with auth.openMetrics
 *   admin  POST /v1/prefetch, POST /v1/invalidate (they make the cluster do work)
 *   route  POST and OPTIONS /v1/events/azure check the token themselves
 *          (src/http/invalidate.ts): Event Grid's handshakes may come without
 *          one and are answered, every other delivery needs an admin token
 *   read   everything else; /v1/objects and /v1/manifests also check the
 *          token's container scope
 * Two layers, both reading the one parse of the request target (target.ts)
 * that routing reads too: this middleware decides for every request before
 * any route runs, and each admin or container-scoped handler checks its own
 * right again (requireAdmin, requireContainer), so a request that reached a
 * handler some other way is still refused.
 *
 * Missing or unknown token → 401 with `WWW-Authenticate: Bearer`; a known
 * token without the right → 403. Tokens are compared in constant time
 * (src/auth/tokens.ts); a request's grant is looked up once and reused by
 * both layers.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { allows, type Grant, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { markAuthenticated } from './connections.js';
import { containerUnder, MANIFESTS_PREFIX, OBJECTS_PREFIX } from './object-path.js';
import type { HttpEnv } from './objects.js';
import { targetOf } from './target.js';

export interface HttpAuthOptions {
  readonly tokens: TokenSet | null;
  /** /metrics without a token (auth.openMetrics: an explicit opt-in). */
  readonly openMetrics: boolean;
  /** Paths of front doors (src/http/door.ts): they authenticate in their protocol's own way. */
  readonly doorPaths?: readonly string[];
}

const OPEN = new Set(['/healthz', '/readyz']);
const ADMIN = new Set(['/v1/prefetch', '/v1/invalidate']);
/** The Event Grid webhook: its route authenticates (after telling a handshake from a delivery). */
export const EVENTS_AZURE_PATH = '/v1/events/azure';

export function authMiddleware(o: HttpAuthOptions): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    const tokens = o.tokens;
    if (!tokens) return next();
    const t = targetOf(c.env.incoming);
    const path = t.path;
    if (OPEN.has(path) || (path === '/metrics' && o.openMetrics)) return next();
    if (path === EVENTS_AZURE_PATH && (c.req.method === 'POST' || c.req.method === 'OPTIONS')) return next();
    if (o.doorPaths?.some((p) => path === p || path.startsWith(`${p}/`))) return next();
    const grant = bearerGrant(c, tokens);
    if (!grant) throw unauthorized(c);
    if (ADMIN.has(path) && c.req.method === 'POST' && !grant.admin) throw notAdmin(path);
    for (const prefix of [OBJECTS_PREFIX, MANIFESTS_PREFIX]) {
      const container = containerUnder(t, prefix);
      if (container !== undefined && !allows(grant, container)) throw cannotRead(container);
    }
    return next();
  };
}

const grants = new WeakMap<IncomingMessage, Grant | null>();

/**
 * The grant of the request's `Authorization: Bearer` token; undefined when
 * absent or unknown. Looked up once per request (constant time), and a
 * connection that presented a valid token counts as authenticated from then
 * on (connections.ts: its idle time, the connection reserve).
 */
export function bearerGrant(c: Context<HttpEnv>, tokens: TokenSet): Grant | undefined {
  const req = c.env.incoming;
  let g = grants.get(req);
  if (g === undefined) {
    const m = bearerToken(c.req.header('authorization'));
    g = (m === undefined ? undefined : tokens.check(m)) ?? null;
    grants.set(req, g);
    if (g) markAuthenticated(req.socket);
  }
  return g ?? undefined;
}

/** A handler's own check that the caller holds an admin token (no-op without auth). */
export function requireAdmin(c: Context<HttpEnv>, tokens: TokenSet | null, path: string): void {
  if (!tokens) return;
  const grant = bearerGrant(c, tokens);
  if (!grant) throw unauthorized(c);
  if (!grant.admin) throw notAdmin(path);
}

/** A handler's own check that the caller's token may read `container` (no-op without auth). */
export function requireContainer(c: Context<HttpEnv>, tokens: TokenSet | null, container: string): void {
  if (!tokens) return;
  const grant = bearerGrant(c, tokens);
  if (!grant) throw unauthorized(c);
  if (!allows(grant, container)) throw cannotRead(container);
}

/** 401 for a request without a known token; sets `WWW-Authenticate`. */
export function unauthorized(c: Context<HttpEnv>): CacheError {
  c.header('WWW-Authenticate', 'Bearer realm="weightcache"');
  return new CacheError(
    'UNAUTHORIZED',
    bearerToken(c.req.header('authorization')) === undefined
      ? 'this endpoint needs "Authorization: Bearer <token>"'
      : 'the bearer token is not valid',
  );
}

/** 403 for a known token without the admin right. */
export function notAdmin(path: string): CacheError {
  return new CacheError('FORBIDDEN', `${path} needs an admin token (auth.adminTokensFile)`);
}

function cannotRead(container: string): CacheError {
  return new CacheError('FORBIDDEN', `this token may not read container ${container}`);
}

function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : undefined;
}
