/**
 * The one bounded worker pool: runs `fn` over `items`, at most `width` at a
 * time, starting them in order. After the first failure, or once `signal`
 * aborts, no new item starts; the items already in flight are always awaited,
 * so nothing keeps running behind the caller's back once the pool returns.
 */
import { CacheError } from '../errors/cache-error.js';

export interface PoolFailure<T> {
  readonly item: T;
  readonly index: number;
  readonly err: unknown;
}

export interface PoolOptions {
  /** Stops starting new items once aborted (work in flight sees it only if `fn` passes it on). */
  readonly signal?: AbortSignal;
  /** Called once, at the first failure, before the pool drains: e.g. abort the items in flight. */
  readonly onFirstFailure?: (err: unknown) => void;
}

/** Runs the pool and resolves with every failure (empty: all started items succeeded). */
export async function settleBounded<T>(
  items: readonly T[],
  width: number,
  fn: (item: T, index: number) => Promise<unknown>,
  o: PoolOptions = {},
): Promise<PoolFailure<T>[]> {
  if (!Number.isInteger(width) || width < 1) {
    throw new CacheError('INTERNAL', `a worker pool needs a width of at least 1, got ${width}`);
  }
  const failures: PoolFailure<T>[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && failures.length === 0 && !o.signal?.aborted) {
      const index = next++;
      try {
        await fn(items[index]!, index);
      } catch (err) {
        const first = failures.length === 0;
        failures.push({ item: items[index]!, index, err });
        if (first) o.onFirstFailure?.(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return failures;
}

/**
 * The pool for callers that want every item done or an exception: throws the
 * first failure, or the signal's reason when it stopped the pool early.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  width: number,
  fn: (item: T, index: number) => Promise<unknown>,
  o: PoolOptions = {},
): Promise<void> {
  const failures = await settleBounded(items, width, fn, o);
  if (failures.length > 0) throw failures[0]!.err;
  if (o.signal?.aborted) throw o.signal.reason;
}
