/**
 * GETRANGE key start end — the main read: ioredis' getrangeBuffer, loaders
 * reading a safetensors header and then tensors. Redis semantics: inclusive
 * offsets, negative ones count from the end, out-of-range ends are clamped,
 * an empty or inverted range (or a missing key) is the empty string.
 */
import { CacheError } from '../../errors/cache-error.js';
import { formatName } from '../../origin/names.js';
import { resolveOrNull } from '../keys.js';
import { sendRange } from './get.js';
import { type CommandSpec, NOT_INTEGER, parseInteger } from './types.js';

/** Redis's getrangeCommand arithmetic: the inclusive [start, end] to send, or null for "". */
export function redisRange(size: number, start: number, end: number): [number, number] | null {
  if (start < 0 && end < 0 && start > end) return null;
  let s = start < 0 ? size + start : start;
  let e = end < 0 ? size + end : end;
  if (s < 0) s = 0;
  if (e < 0) e = 0;
  if (e >= size) e = size - 1;
  if (s > e || size === 0) return null;
  return [s, e];
}

export const getrange: CommandSpec = {
  name: 'getrange',
  arity: 4,
  flags: ['readonly'],
  firstKey: 1,
  lastKey: 1,
  step: 1,
  summary: 'Returns bytes start..end (inclusive, negative from the end) of an object.',
  group: 'string',
  async run(ctx) {
    const start = parseInteger(ctx.args[2]);
    const end = parseInteger(ctx.args[3]);
    if (start === null || end === null) return ctx.reply.error(NOT_INTEGER);
    const info = await resolveOrNull(ctx.deps.readPath, ctx.args[1]!, ctx.signal);
    if (info === null) return ctx.reply.bulk('');
    const r = redisRange(info.size, start, end);
    if (r === null) return ctx.reply.bulk('');
    const max = ctx.deps.limits.maxGetBytes;
    if (r[1] - r[0] + 1 > max) {
      throw new CacheError(
        'TOO_LARGE',
        `GETRANGE of ${formatName(info)} asks for ${r[1] - r[0] + 1} bytes, over the limit of ${max} bytes (resp.maxGetBytes): ask for smaller ranges`,
      );
    }
    await sendRange(ctx, info, r[0], r[1]);
  },
};
