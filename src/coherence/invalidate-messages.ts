/**
 * INVALIDATE (0x24): a member hands an invalidation to the home of a name, or
 * a prefix invalidation to every member (docs/coherence.md, "Invalidation").
 * The request is answered only when the invalidation completed at the
 * receiver, so it may take up to about a lease term; callers give it a
 * timeout of their own.
 *
 *   request:  str container, str keyOrPrefix, u8 kind (0 key, 1 prefix)
 *   response: u8 outcome (0 bound, 1 deleted, 2 prefix), Version (zeroed unless
 *             bound), u32 names, u32 acked, u32 expired
 *
 * Decoders are strict like the lease messages': a field we cannot interpret
 * exactly is a broken peer (MetaError closes the connection).
 */

import { CacheError } from '../errors/cache-error.js';
import { validateContainer, validateKey } from '../origin/names.js';
import { MetaError, MetaReader, MetaWriter } from '../transport/codec.js';
import type { BoundVersion, InvalidationTarget } from './invalidation.js';

export interface InvalidateAnswer {
  /** Single name: the version bound now, or null (the origin has no such object). Undefined for a prefix. */
  readonly version?: BoundVersion | null;
  readonly names: number;
  readonly acked: number;
  readonly expired: number;
}

const KIND_KEY = 0;
const KIND_PREFIX = 1;
const OUTCOME_BOUND = 0;
const OUTCOME_DELETED = 1;
const OUTCOME_PREFIX = 2;
const U32_MAX = 0xffffffff;
const LONE_SURROGATE_RE = /\p{Surrogate}/u;
/** The range of a Date's time value (ECMA-262 TimeClip). */
const MAX_TIME_MS = 8.64e15;

export function encodeInvalidate(t: InvalidationTarget): Buffer {
  const prefix = 'prefix' in t;
  const rest = prefix ? t.prefix : t.key;
  checkTarget(t.container, rest, prefix);
  return new MetaWriter()
    .str(t.container)
    .str(rest)
    .raw(Uint8Array.of(prefix ? KIND_PREFIX : KIND_KEY))
    .bytes();
}

export function decodeInvalidate(meta: Buffer): InvalidationTarget {
  const r = new MetaReader(meta);
  const container = r.utf8();
  const rest = r.utf8();
  const kind = r.raw(1)[0]!;
  r.end();
  if (kind !== KIND_KEY && kind !== KIND_PREFIX) throw new MetaError(`unknown INVALIDATE kind ${kind}`);
  checkTarget(container, rest, kind === KIND_PREFIX);
  return kind === KIND_PREFIX ? { container, prefix: rest } : { container, key: rest };
}

export function encodeInvalidateAnswer(a: InvalidateAnswer): Buffer {
  const w = new MetaWriter();
  if (a.version) {
    const ms = Date.parse(a.version.lastModified);
    if (!a.version.etag || !Number.isSafeInteger(a.version.size) || a.version.size < 0 || Number.isNaN(ms)) {
      throw new MetaError(`bad bound version ${JSON.stringify(a.version)}`);
    }
    w.raw(Uint8Array.of(OUTCOME_BOUND)).str(a.version.etag).u64(a.version.size).f64(ms);
  } else {
    w.raw(Uint8Array.of(a.version === null ? OUTCOME_DELETED : OUTCOME_PREFIX))
      .str('')
      .u64(0)
      .f64(0);
  }
  return w.u32(count(a.names)).u32(count(a.acked)).u32(count(a.expired)).bytes();
}

export function decodeInvalidateAnswer(meta: Buffer): InvalidateAnswer {
  const r = new MetaReader(meta);
  const outcome = r.raw(1)[0]!;
  const etag = r.utf8();
  const size = r.u64();
  const ms = r.f64();
  const names = r.u32();
  const acked = r.u32();
  const expired = r.u32();
  r.end();
  if (outcome === OUTCOME_BOUND) {
    if (!etag || !Number.isInteger(ms) || Math.abs(ms) > MAX_TIME_MS) {
      throw new MetaError(
        `INVALIDATE answer: a bound version needs an etag and a Date's time value, got ${ms}`,
      );
    }
    return { version: { etag, size, lastModified: new Date(ms).toISOString() }, names, acked, expired };
  }
  if (outcome !== OUTCOME_DELETED && outcome !== OUTCOME_PREFIX) {
    throw new MetaError(`unknown INVALIDATE outcome ${outcome}`);
  }
  if (etag !== '' || size !== 0 || ms !== 0)
    throw new MetaError('INVALIDATE answer: version set without one bound');
  return outcome === OUTCOME_DELETED ? { version: null, names, acked, expired } : { names, acked, expired };
}

function checkTarget(container: string, rest: string, prefix: boolean): void {
  // A lone surrogate would not survive the UTF-8 round trip.
  if (LONE_SURROGATE_RE.test(container) || LONE_SURROGATE_RE.test(rest)) {
    throw new MetaError('bad invalidation target: a lone UTF-16 surrogate');
  }
  try {
    validateContainer(container);
    validateKey(rest, { allowEmpty: prefix, what: prefix ? 'prefix' : 'key' });
  } catch (err) {
    if (err instanceof CacheError)
      throw new MetaError(`bad invalidation target: ${err.message}`, { cause: err });
    throw err;
  }
}

function count(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new MetaError(`count out of range: ${n}`);
  return Math.min(n, U32_MAX);
}
