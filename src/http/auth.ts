/**
 * Bearer-token authentication for the HTTP door (auth.tokensFile,
 * auth.adminTokensFile). What each route needs:
 *   open   /healthz, /readyz (probes), /metrics unless auth.openMetrics is false
 *   admin  POST /v1/prefetch, POST /v1/invalidate (they make the cluster do work)
 *   read   everything else; /v1/objects and /v1/manifests also check the
 *          token's container scope
 * Missing or unknown token → 401 with `WWW-Authenticate: Bearer`; a known
 * token without the right → 403. Tokens are compared in constant time
 * (src/auth/tokens.ts).
 */
import type { MiddlewareHandler } from 'hono';
import { allows, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { decodeSegments, MANIFESTS_PREFIX, OBJECTS_PREFIX, rawPath } from './object-path.js';
import type { HttpEnv } from './objects.js';

export interface HttpAuthOptions {
  readonly tokens: TokenSet | null;
  /** /metrics without a token (Prometheus scrapes inside the cluster). */
  readonly openMetrics: boolean;
}

const OPEN = new Set(['/healthz', '/readyz']);
const ADMIN = new Set(['/v1/prefetch', '/v1/invalidate']);

export function authMiddleware(o: HttpAuthOptions): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    const tokens = o.tokens;
    const path = rawPath(c.env.incoming.url ?? '');
    if (!tokens || OPEN.has(path) || (path === '/metrics' && o.openMetrics)) return next();
    const header = c.req.header('authorization');
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    const grant = m ? tokens.check(m[1]!) : undefined;
    if (!grant) {
      c.header('WWW-Authenticate', 'Bearer realm="weightcache"');
      throw new CacheError(
        'UNAUTHORIZED',
        header === undefined || !m
          ? 'this endpoint needs "Authorization: Bearer <token>"'
          : 'the bearer token is not valid',
      );
    }
    if (ADMIN.has(path) && c.req.method === 'POST' && !grant.admin) {
      throw new CacheError('FORBIDDEN', `${path} needs an admin token (auth.adminTokensFile)`);
    }
    for (const prefix of [OBJECTS_PREFIX, MANIFESTS_PREFIX]) {
      if (!path.startsWith(prefix)) continue;
      const container = decodeSegments(path.slice(prefix.length))[0] ?? '';
      if (!allows(grant, container))
        throw new CacheError('FORBIDDEN', `this token may not read container ${container}`);
    }
    return next();
  };
}
