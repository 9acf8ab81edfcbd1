/**
 * Bearer-token authentication for the HTTP door (auth.tokensFile,
 * auth.adminTokensFile). What each route needs:
 *   open   /healthz, /readyz (probes), /metrics unless auth.openMetrics is false
 *   admin  POST /v1/prefetch, POST /v1/invalidate (they make the cluster do work)
 *   route  POST and OPTIONS /v1/events/azure check the token themselves
 *          (src/http/invalidate.ts): Event Grid's handshakes may come without
 *          one and are answered, every other delivery needs an admin token
 *   read   everything else; /v1/objects and /v1/manifests also check the
 *          token's container scope
 * Missing or unknown token → 401 with `WWW-Authenticate: Bearer`; a known
 * token without the right → 403. Tokens are compared in constant time
 * (src/auth/tokens.ts).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { allows, type Grant, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { decodeSegments, MANIFESTS_PREFIX, OBJECTS_PREFIX, rawPath } from './object-path.js';
import type { HttpEnv } from './objects.js';

export interface HttpAuthOptions {
  readonly tokens: TokenSet | null;
  /** /metrics without a token (Prometheus scrapes inside the cluster). */
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
    const path = rawPath(c.env.incoming.url ?? '');
    if (!tokens || OPEN.has(path) || (path === '/metrics' && o.openMetrics)) return next();
    if (path === EVENTS_AZURE_PATH && (c.req.method === 'POST' || c.req.method === 'OPTIONS')) return next();
    if (o.doorPaths?.some((p) => path === p || path.startsWith(`${p}/`))) return next();
    const grant = bearerGrant(c, tokens);
    if (!grant) throw unauthorized(c);
    if (ADMIN.has(path) && c.req.method === 'POST' && !grant.admin) throw notAdmin(path);
    for (const prefix of [OBJECTS_PREFIX, MANIFESTS_PREFIX]) {
      if (!path.startsWith(prefix)) continue;
      const container = decodeSegments(path.slice(prefix.length))[0] ?? '';
      if (!allows(grant, container))
        throw new CacheError('FORBIDDEN', `this token may not read container ${container}`);
    }
    return next();
  };
}

/** The grant of the request's `Authorization: Bearer` token; undefined when absent or unknown. Constant time. */
export function bearerGrant(c: Context<HttpEnv>, tokens: TokenSet): Grant | undefined {
  const m = bearerToken(c.req.header('authorization'));
  return m === undefined ? undefined : tokens.check(m);
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

function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : undefined;
}
