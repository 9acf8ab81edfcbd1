/**
 * weightcache's own commands, named WC.* like a Redis module's:
 * - WC.STAT key: the version a key means now (etag, size, chunk size and
 *   count, last modified) — what a loader pins before reading.
 * - WC.PREFETCH container/prefix: warms every chunk of every object under the
 *   prefix through the read path (so DRAM, NVMe and single-flight apply as for
 *   any read) and answers counts once done. A rollout tool calls it before it
 *   flips traffic. It holds this connection until done; other connections go on.
 */
import { chunkCount } from '../../chunk/name.js';
import { CacheError } from '../../errors/cache-error.js';
import type { Source } from '../../metrics/metrics.js';
import { validateContainer, validateKey } from '../../origin/names.js';
import type { ObjectInfo } from '../../origin/origin.js';
import { parseKey, resolveKey } from '../keys.js';
import { requireAdmin } from '../scope.js';
import type { CommandSpec, Ctx } from './types.js';
import { str } from './types.js';

/** Objects one prefetch may cover (a model directory has tens to thousands). */
const MAX_PREFETCH_OBJECTS = 100_000;
/** Chunks of one prefetch in flight at once; the origin limiter bounds the fleet-wide total. */
const PREFETCH_CONCURRENCY = 8;

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
      ['key', `${info.container}/${info.key}`],
      ['version', info.etag],
      ['size', info.size],
      ['chunk-size', cs],
      ['chunks', chunkCount(info.size, cs)],
      ['last-modified', info.lastModified.toISOString()],
    ]);
  },
};

async function prefetch(ctx: Ctx, container: string, prefix: string) {
  const rp = ctx.deps.readPath;
  const objects: ObjectInfo[] = [];
  for await (const listed of ctx.deps.origin.list(container, prefix, {
    limit: MAX_PREFETCH_OBJECTS,
    signal: ctx.signal,
  })) {
    // The listing's version may already be stale: warm the version the name means now.
    objects.push(await rp.resolve(listed, ctx.signal));
  }
  const jobs: Array<[ObjectInfo, number]> = [];
  for (const o of objects) for (let i = 0; i < chunkCount(o.size, rp.chunkSize); i++) jobs.push([o, i]);
  const found: Record<Source, number> = { dram: 0, nvme: 0, peer: 0, origin: 0 };
  let bytes = 0;
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const [o, i] = jobs[next++]!;
      const { chunk, source } = await rp.chunk(o, i, ctx.signal);
      found[source]++;
      bytes += chunk.data.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PREFETCH_CONCURRENCY, jobs.length) }, worker));
  return { objects: objects.length, chunks: jobs.length, bytes, found };
}

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
    const arg = str(ctx.args[1]);
    const slash = arg.indexOf('/');
    if (slash <= 0)
      throw new CacheError('BAD_KEY', "WC.PREFETCH takes 'container/prefix' (the prefix may be empty)");
    const container = validateContainer(arg.slice(0, slash));
    const prefix = validateKey(arg.slice(slash + 1), { allowEmpty: true, what: 'prefix' });
    const r = await prefetch(ctx, container, prefix);
    ctx.reply.fields([
      ['objects', r.objects],
      ['chunks', r.chunks],
      ['bytes', r.bytes],
      ['from-dram', r.found.dram],
      ['from-nvme', r.found.nvme],
      ['from-origin', r.found.origin],
    ]);
  },
};
