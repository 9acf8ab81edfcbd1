/**
 * GET and MGET: whole values streamed from the chunk Buffers. A value larger
 * than resp.maxGetBytes is refused with a pointer to GETRANGE, before any
 * byte is read, so one GET can't make a client (or us) hold a 10 GB reply.
 */
import { CacheError } from '../../errors/cache-error.js';
import { forEachBounded } from '../../fill/pool.js';
import { formatName } from '../../origin/names.js';
import type { ObjectInfo } from '../../origin/origin.js';
import { resolveOrNull } from '../keys.js';
import { ReplyBroken } from '../reply.js';
import type { CommandSpec, Ctx } from './types.js';

const keyed = { firstKey: 1, step: 1, group: 'string' } as const;

/**
 * Streams a whole value (or a piece of it) as one bulk reply, within a share
 * of resp.maxReplyMemory sized for the most the read can hold at once: its
 * chunks, up to the one in the socket and the read-ahead behind it.
 */
export async function sendRange(ctx: Ctx, info: ObjectInfo, start: number, end: number): Promise<void> {
  const { readPath, replyMemory } = ctx.deps;
  const cs = readPath.chunkSize;
  const touched = Math.floor(end / cs) - Math.floor(start / cs) + 1;
  const bytes = Math.min(info.size, Math.min(touched, readPath.readAhead + 1) * cs);
  const share = await replyMemory.acquire(bytes, ctx.owner, ctx.signal, touched === 1);
  try {
    await ctx.reply.bulkStream(end - start + 1, readPath.read(info, start, end, ctx.signal));
  } finally {
    ctx.reply.releaseWhenWritten(share);
  }
}

function tooLarge(ctx: Ctx, info: ObjectInfo): CacheError {
  const max = ctx.deps.limits.maxGetBytes;
  return new CacheError(
    'TOO_LARGE',
    `${formatName(info)} is ${info.size} bytes, over the GET limit of ${max} bytes (resp.maxGetBytes): read it in pieces with GETRANGE key start end`,
  );
}

export const get: CommandSpec = {
  ...keyed,
  name: 'get',
  arity: 2,
  flags: ['readonly', 'fast'],
  lastKey: 1,
  summary: "Returns an object's bytes (up to resp.maxGetBytes; use GETRANGE for larger).",
  async run(ctx) {
    const info = await resolveOrNull(ctx.deps.readPath, ctx.args[1]!, ctx.signal);
    if (info === null) return ctx.reply.nil();
    if (info.size > ctx.deps.limits.maxGetBytes) throw tooLarge(ctx, info);
    await sendRange(ctx, info, 0, info.size - 1);
  },
};

/** At most this many keys of one MGET are resolved at once. */
const RESOLVE_CONCURRENCY = 16;

export const mget: CommandSpec = {
  ...keyed,
  name: 'mget',
  arity: -2,
  flags: ['readonly', 'fast'],
  lastKey: -1,
  summary: 'Returns the bytes of several objects; malformed or missing keys are nil.',
  async run(ctx) {
    const keys = ctx.args.slice(1);
    const infos: Array<ObjectInfo | null> = new Array(keys.length).fill(null);
    await forEachBounded(keys, RESOLVE_CONCURRENCY, async (key, i) => {
      infos[i] = await resolveOrNull(ctx.deps.readPath, key, ctx.signal);
    });
    // The whole reply is bounded like one GET: decided before the first byte goes out.
    const total = infos.reduce((sum, info) => sum + (info?.size ?? 0), 0);
    if (total > ctx.deps.limits.maxGetBytes) {
      throw new CacheError(
        'TOO_LARGE',
        `MGET reply would be ${total} bytes, over the GET limit of ${ctx.deps.limits.maxGetBytes} bytes (resp.maxGetBytes)`,
      );
    }
    ctx.reply.array(keys.length);
    try {
      for (const info of infos) {
        if (info === null) ctx.reply.nil();
        else await sendRange(ctx, info, 0, info.size - 1);
      }
    } catch (err) {
      // The array header is out: an error line now would be taken for one of its elements.
      throw err instanceof ReplyBroken ? err : new ReplyBroken(err);
    }
  },
};
