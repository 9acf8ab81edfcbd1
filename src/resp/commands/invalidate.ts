/**
 * WC.INVALIDATE container/key
 * WC.INVALIDATE PREFIX container/prefix
 *
 * The RESP entry point of an invalidation (docs/coherence.md, "Invalidation"):
 * hands the target to the coherence layer's `Invalidate` with source 'resp'
 * and answers only once it completed — every lease holder acknowledged or its
 * lease ran out — so a client that got the reply knows no read that resolves
 * the name afterwards, anywhere, gets an older version than the one answered.
 *
 * Like WC.PREFETCH it holds this connection until done (later commands of a
 * pipeline wait, so replies stay in order; other connections go on). If the
 * client goes away, the wait is abandoned through the connection's signal.
 *
 * Needs an admin token when auth is on (auth.adminTokensFile), as HTTP's
 * POST /v1/invalidate does. A pinned key (`{etag}container/key`) is refused:
 * an invalidation names a name, and a version's bytes never change.
 */
import type { InvalidationTarget } from '../../coherence/invalidation.js';
import { CacheError } from '../../errors/cache-error.js';
import { formatName, parseName, validateContainer, validateKey } from '../../origin/names.js';
import { requireAdmin } from '../scope.js';
import type { CommandSpec } from './types.js';
import { str } from './types.js';

const USAGE = "WC.INVALIDATE takes 'container/key' or PREFIX 'container/prefix'";

function refusePinned(arg: string): void {
  if (arg.startsWith('{')) {
    throw new CacheError(
      'BAD_KEY',
      "WC.INVALIDATE names a name, not a version: drop the '{etag}' pin (a version's bytes never change; invalidation makes the name mean its current version)",
    );
  }
}

/** The target the arguments name; throws BAD_KEY / BAD_REQUEST with what is wrong. */
export function parseInvalidateArgs(args: readonly Buffer[]): InvalidationTarget {
  if (args.length === 2) {
    const arg = str(args[1]);
    refusePinned(arg);
    const name = parseName(arg);
    return { container: name.container, key: name.key };
  }
  if (args.length === 3 && str(args[1]).toLowerCase() === 'prefix') {
    const arg = str(args[2]);
    refusePinned(arg);
    const slash = arg.indexOf('/');
    if (slash <= 0) throw new CacheError('BAD_KEY', `${USAGE} (the prefix may be empty)`);
    const container = validateContainer(arg.slice(0, slash));
    const prefix = validateKey(arg.slice(slash + 1), { allowEmpty: true, what: 'prefix' });
    return { container, prefix };
  }
  throw new CacheError('BAD_REQUEST', `syntax error: ${USAGE}`);
}

export const wcInvalidate: CommandSpec = {
  name: 'wc.invalidate',
  arity: -2,
  flags: ['admin'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary:
    "Invalidates 'container/key' (or PREFIX 'container/prefix') cluster-wide; answers once every lease holder acknowledged or expired.",
  group: 'weightcache',
  async run(ctx) {
    if (ctx.args.length > 3) {
      ctx.reply.error("ERR wrong number of arguments for 'wc.invalidate' command");
      return;
    }
    requireAdmin(ctx, 'WC.INVALIDATE');
    const invalidate = ctx.deps.invalidate;
    if (!invalidate) {
      ctx.reply.error('ERR invalidation is not available on this server');
      return;
    }
    const target = parseInvalidateArgs(ctx.args);
    // Replies of earlier pipelined commands go out now, not after the wait.
    ctx.reply.flush();
    const r = await invalidate(target, 'resp', ctx.signal);
    const { reply } = ctx;
    const counts = (): void => {
      reply.bulk('acked');
      reply.int(r.acked);
      reply.bulk('expired');
      reply.int(r.expired);
      reply.bulk('duration-ms');
      reply.int(Math.max(0, Math.round(r.durationMs)));
    };
    if ('key' in target) {
      const v = r.version ?? null;
      reply.map(7);
      reply.bulk('key');
      reply.bulk(formatName(target));
      reply.bulk('version');
      if (v) reply.bulk(v.etag);
      else reply.nil();
      reply.bulk('size');
      if (v) reply.int(v.size);
      else reply.nil();
      reply.bulk('last-modified');
      if (v) reply.bulk(v.lastModified);
      else reply.nil();
      counts();
    } else {
      reply.map(5);
      reply.bulk('prefix');
      reply.bulk(`${target.container}/${target.prefix}`);
      reply.bulk('names');
      reply.int(r.names);
      counts();
    }
  },
};
