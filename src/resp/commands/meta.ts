/** STRLEN, EXISTS, TYPE: answered from the version (the lease table), without reading bytes. */
import { resolveOrNull } from '../keys.js';
import type { CommandSpec } from './types.js';

const base = { firstKey: 1, step: 1, group: 'keyspace' } as const;

export const strlen: CommandSpec = {
  ...base,
  name: 'strlen',
  arity: 2,
  flags: ['readonly', 'fast'],
  lastKey: 1,
  group: 'string',
  summary: "Returns an object's size in bytes (0 when missing).",
  async run(ctx) {
    const info = await resolveOrNull(ctx.deps.readPath, ctx.args[1]!, ctx.signal);
    ctx.reply.int(info?.size ?? 0);
  },
};

export const exists: CommandSpec = {
  ...base,
  name: 'exists',
  arity: -2,
  flags: ['readonly', 'fast'],
  lastKey: -1,
  summary: 'Counts the keys that exist (a key given twice counts twice).',
  async run(ctx) {
    let n = 0;
    for (const k of ctx.args.slice(1)) {
      if ((await resolveOrNull(ctx.deps.readPath, k, ctx.signal)) !== null) n++;
    }
    ctx.reply.int(n);
  },
};

export const type: CommandSpec = {
  ...base,
  name: 'type',
  arity: 2,
  flags: ['readonly', 'fast'],
  lastKey: 1,
  summary: "'string' for an object, 'none' when missing.",
  async run(ctx) {
    const info = await resolveOrNull(ctx.deps.readPath, ctx.args[1]!, ctx.signal);
    ctx.reply.simple(info === null ? 'none' : 'string');
  },
};
