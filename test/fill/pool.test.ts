/** The one bounded worker pool: its bound, its order, and what it does on a failure or an abort. */
import { describe, expect, it } from 'vitest';
import { forEachBounded, settleBounded } from '../../src/fill/pool.js';

/** A task the test finishes by hand, recording how many run at once. */
function gate() {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const waiting = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();
  const run = (i: number) =>
    new Promise<void>((resolve, reject) => {
      started.push(i);
      peak = Math.max(peak, ++running);
      waiting.set(i, {
        resolve: () => {
          running--;
          resolve();
        },
        reject: (e) => {
          running--;
          reject(e);
        },
      });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { run, started, waiting, peak: () => peak, running: () => running, tick };
}

describe('settleBounded / forEachBounded', () => {
  it('never runs more than width at once, starts items in order, visits each once', async () => {
    const g = gate();
    const items = Array.from({ length: 10 }, (_, i) => i);
    const done = forEachBounded(items, 3, (i) => g.run(i));
    for (let left = 10; left > 0; ) {
      await g.tick();
      const [first] = g.waiting.keys();
      g.waiting.get(first!)!.resolve();
      g.waiting.delete(first!);
      left--;
    }
    await done;
    expect(g.started).toEqual(items);
    expect(g.peak()).toBe(3);
  });

  it('after a failure starts nothing new, awaits the items in flight, then throws the first failure', async () => {
    const g = gate();
    const items = Array.from({ length: 10 }, (_, i) => i);
    let firstSeen: unknown;
    const done = forEachBounded(items, 3, (i) => g.run(i), { onFirstFailure: (e) => (firstSeen = e) });
    let settled = false;
    done.catch(() => {}).finally(() => (settled = true));
    await g.tick();
    expect(g.started).toEqual([0, 1, 2]);
    const boom = new Error('boom');
    g.waiting.get(1)!.reject(boom);
    await g.tick();
    expect(firstSeen).toBe(boom);
    expect(g.started).toEqual([0, 1, 2]); // nothing new
    expect(settled).toBe(false); // 0 and 2 are still running
    g.waiting.get(0)!.resolve();
    g.waiting.get(2)!.reject(new Error('later'));
    await expect(done).rejects.toBe(boom);
    expect(g.running()).toBe(0);
  });

  it('settleBounded hands back every failure with its item and index', async () => {
    const failures = await settleBounded(['a', 'b', 'c'], 3, async (s) => {
      if (s !== 'a') throw new Error(s);
    });
    expect(failures.map((f) => [f.item, f.index, (f.err as Error).message])).toEqual([
      ['b', 1, 'b'],
      ['c', 2, 'c'],
    ]);
  });

  it('an aborted signal stops new starts; forEachBounded throws its reason', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const p = forEachBounded(
      [0, 1, 2, 3, 4],
      1,
      async (i) => {
        seen.push(i);
        if (i === 1) ac.abort(new Error('stopped'));
      },
      { signal: ac.signal },
    );
    await expect(p).rejects.toThrow('stopped');
    expect(seen).toEqual([0, 1]);
  });

  it('no items: resolves at once; a width below 1 is refused', async () => {
    await expect(forEachBounded([], 4, async () => {})).resolves.toBeUndefined();
    await expect(forEachBounded([1], 0, async () => {})).rejects.toThrow('width of at least 1, got 0');
  });
});
