/**
 * A connection whose token may read only some containers sees a read path
 * and an origin that refuse the others (NOPERM), so every command — GET,
 * GETRANGE, MGET, SCAN, WC.* — is scoped without each one checking.
 */
import { allows, type Grant } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import type { Origin } from '../origin/origin.js';
import type { ReadPath } from '../read/read-path.js';
import type { Ctx, RespDeps } from './commands/types.js';

/**
 * Commands that make the cluster do work (WC.PREFETCH, WC.INVALIDATE) need an
 * admin token when auth is on, as their HTTP counterparts do. With auth off
 * every client may (binds are then loopback-only, see protected mode).
 */
export function requireAdmin(ctx: Ctx, command: string): void {
  if (ctx.deps.tokens !== null && ctx.session.grant?.admin !== true) {
    throw new CacheError('FORBIDDEN', `${command} needs an admin token (auth.adminTokensFile)`);
  }
}

export function scopedDeps(deps: RespDeps, grant: Grant): RespDeps {
  if (grant.admin || grant.containers === null) return deps;
  const check = (container: string) => {
    if (!allows(grant, container))
      throw new CacheError('FORBIDDEN', `this token may not read container ${container}`);
  };
  const readPath: ReadPath = Object.create(deps.readPath);
  readPath.resolve = (name, signal, expectEtag) => {
    check(name.container);
    return deps.readPath.resolve(name, signal, expectEtag);
  };
  const origin: Origin = Object.create(deps.origin);
  origin.list = (container, prefix, opts) => {
    check(container);
    return deps.origin.list(container, prefix, opts);
  };
  return { ...deps, readPath, origin };
}
