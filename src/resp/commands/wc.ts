/**
 * weightcache's own commands, named WC.* like a Redis module's:
 * - WC.STAT key: the version a key means now (etag, size, chunk size and
 *   count, last modified) — what a loader pins before reading.
 * - WC.PREFETCH container/prefix: starts (or joins) the prefetch job for the
 *   prefix — the same jobs, limits and owner warming as HTTP's /v1/prefetch
 *   (src/prefetch/) — and answers counts once it is done. A rollout tool
 *   calls it before it flips traffic. It holds this connection until done;
 *   other connections go on.
 */
import { chunkCount } from '../../chunk/name.js';
import { CacheError } from '../../errors/cache-error.js';
import { formatName } from '../../origin/names.js';
import { parseKey, resolveKey } from '../keys.js';
import { requireAdmin } from '../scope.js';
import type { CommandSpec } from './types.js';
import { str } from './types.js';

export const wcStat: CommandSpec = {
  name: 'wc.stat',
  arity: 2,
  flags: ['readonly', 'fast'],
  firstKey: 1,
  lastKey: 1,
  step: 1,
  summary: 'The version a key means now: etag, size, chunk size, chunks, last modified.',
  group: 'weightcache',
  async run(ctx) {
    const info = await resolveKey(ctx.deps.readPath, parseKey(ctx.args[1]!), ctx.signal);
    const cs = ctx.deps.readPath.chunkSize;
    ctx.reply.fields([
      ['key', formatName(info)],
      ['version', info.etag],
      ['size', info.size],
      ['chunk-size', cs],
      ['chunks', chunkCount(info.size, cs)],
      ['last-modified', info.lastModified.toISOString()],
    ]);
  },
};

export const wcPrefetch: CommandSpec = {
  name: 'wc.prefetch',
  arity: 2,
  flags: ['readonly', 'admin'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary: "Warms every chunk of every object under 'container/prefix'; answers counts.",
  group: 'weightcache',
  async run(ctx) {
    requireAdmin(ctx, 'WC.PREFETCH');
    const jobs = ctx.deps.prefetch;
    if (!jobs) throw new CacheError('UNSUPPORTED', 'WC.PREFETCH is not served by this process');
    const arg = str(ctx.args[1]);
    const slash = arg.indexOf('/');
    if (slash <= 0)
      throw new CacheError('BAD_KEY', "WC.PREFETCH takes 'container/prefix' (the prefix may be empty)");
    const job = await jobs.complete(arg.slice(0, slash), arg.slice(slash + 1));
    if (job.error) throw new CacheError(job.error.code, job.error.message);
    ctx.reply.fields([
      ['objects', job.files],
      ['chunks', job.chunks],
      ['bytes', job.bytesDone],
      ['from-dram', job.found.dram],
      ['from-nvme', job.found.nvme],
      ['from-peer', job.found.peer],
      ['from-origin', job.found.origin],
    ]);
  },
};
