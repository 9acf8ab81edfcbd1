/**
 * SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] over the origin listing
 * (SGLang's Redis loader does SCAN MATCH 'model/*' then GET). Keys live in
 * containers and the origin lists one container under a prefix, so a new
 * scan needs MATCH whose literal start names both: 'container/prefix*'. The
 * glob then filters what the listing yields. A page counts keys examined, as
 * in Redis, so it may hold few matches (even none) while the cursor is not 0.
 * Cursors: see scan-cursors.ts.
 */
import { CacheError } from '../../errors/cache-error.js';
import { formatName, validateContainer, validateKey } from '../../origin/names.js';
import { globMatch, literalPrefix } from '../glob.js';
import type { CursorState } from '../scan-cursors.js';
import { type CommandSpec, type Ctx, NOT_INTEGER, parseInteger, SYNTAX, str } from './types.js';

/**
 * Keys examined per call. COUNT is a hint in Redis (small keyspaces come back
 * whole whatever it says), and every page here re-lists the prefix from its
 * start, so pages are at least MIN_SCAN_PAGE keys: a model directory (tens to
 * a thousand files) comes back in one call instead of one listing per 10 keys.
 * At most MAX_SCAN_PAGE bounds one call's work and reply.
 */
export const MIN_SCAN_PAGE = 1000;
export const MAX_SCAN_PAGE = 10_000;
/** Entries one listing may yield (Azure's own maximum per list()). */
const MAX_LISTING = 100_000;

function startState(pattern: string): CursorState {
  const lit = literalPrefix(pattern);
  const slash = lit.indexOf('/');
  if (slash <= 0) {
    throw new CacheError(
      'BAD_REQUEST',
      "SCAN needs MATCH 'container/prefix*': keys are listed per container, so the pattern must start with a literal container name and '/'",
    );
  }
  const container = validateContainer(lit.slice(0, slash));
  const prefix = validateKey(lit.slice(slash + 1), { allowEmpty: true, what: 'SCAN prefix' });
  return { container, prefix, pattern, lastKey: '' };
}

async function run(ctx: Ctx): Promise<void> {
  const { args, reply, deps } = ctx;
  const cursor = parseInteger(args[1]);
  if (cursor === null || cursor < 0) return reply.error('ERR invalid cursor');
  let pattern: string | null = null;
  let count = 10;
  let typeFilter: string | null = null;
  for (let i = 2; i < args.length; i += 2) {
    const opt = str(args[i]).toLowerCase();
    if (i + 1 >= args.length) return reply.error(SYNTAX);
    if (opt === 'match') pattern = str(args[i + 1]);
    else if (opt === 'count') {
      const n = parseInteger(args[i + 1]);
      if (n === null) return reply.error(NOT_INTEGER);
      if (n < 1) return reply.error(SYNTAX);
      count = n;
    } else if (opt === 'type') typeFilter = str(args[i + 1]).toLowerCase();
    else return reply.error(SYNTAX);
  }
  let state: CursorState;
  if (cursor === 0) {
    state = startState(pattern ?? ''); // no MATCH: startState explains why one is needed
  } else {
    const saved = deps.cursors.get(cursor);
    if (saved === undefined) {
      return reply.error('ERR invalid cursor (unknown or expired: start again from 0)');
    }
    state = pattern === null ? saved : { ...saved, pattern };
  }
  const pageSize = Math.min(Math.max(count, MIN_SCAN_PAGE), MAX_SCAN_PAGE);
  const matches: string[] = [];
  let examined = 0;
  let lastKey = state.lastKey;
  let more = false;
  for await (const o of deps.origin.list(state.container, state.prefix, {
    limit: MAX_LISTING,
    signal: ctx.signal,
  })) {
    // Resume after the last key returned (listings are in key order).
    if (state.lastKey !== '' && o.key <= state.lastKey) continue;
    if (examined === pageSize) {
      more = true;
      break;
    }
    examined++;
    lastKey = o.key;
    const full = formatName(o);
    if (globMatch(state.pattern, full)) matches.push(full);
  }
  // Every object is a string: TYPE string keeps the page, any other type empties it.
  const page = typeFilter === null || typeFilter === 'string' ? matches : [];
  const next = more ? deps.cursors.save({ ...state, lastKey }) : 0;
  reply.array(2);
  reply.bulk(String(next));
  reply.array(page.length);
  for (const k of page) reply.bulk(k);
}

export const scan: CommandSpec = {
  name: 'scan',
  arity: -2,
  flags: ['readonly'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary: "Lists keys matching 'container/prefix*' (glob), a page per call.",
  group: 'keyspace',
  run,
};
