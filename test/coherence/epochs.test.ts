import { describe, expect, it } from 'vitest';
import { Epochs } from '../../src/coherence/epochs.js';

describe('Epochs', () => {
  it('starts every name at 0; bump moves only up and of() reads it back', () => {
    const e = new Epochs(100);
    expect(e.of('c/a')).toBe(0);
    let last = e.of('c/a');
    for (let i = 0; i < 10; i++) {
      const next = e.bump('c/a');
      expect(next).toBeGreaterThan(last);
      expect(e.of('c/a')).toBe(next);
      last = next;
    }
  });

  it('after LRU eviction an old epoch never becomes current again', () => {
    const max = 8;
    const e = new Epochs(max);
    // What requests in flight noted for c/a, at each of its epochs.
    const noted = [e.of('c/a')];
    for (let i = 0; i < 3; i++) noted.push(e.bump('c/a'));
    // Fill well past max: c/a is pushed out, so are many others, some of them bumped more.
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3 * max; i++) {
        const id = `c/n${round}-${i}`;
        for (let j = 0; j <= i % 4; j++) e.bump(id);
      }
      const now = e.of('c/a');
      for (const old of noted.slice(0, -1)) expect(now).not.toBe(old);
      expect(now).toBeGreaterThanOrEqual(noted.at(-1)!);
      // A bump after the eviction moves past everything noted so far.
      noted.push(e.bump('c/a'));
      expect(noted.at(-1)!).toBeGreaterThan(now);
    }
  });

  it('a name never seen, asked after evictions, starts above every evicted epoch', () => {
    const e = new Epochs(2);
    for (let i = 0; i < 5; i++) e.bump('c/hot');
    const hot = e.of('c/hot');
    e.bump('c/x');
    e.bump('c/y'); // c/hot (the least recently used) is evicted
    expect(e.of('c/hot')).toBeGreaterThanOrEqual(hot);
    // A request that noted c/hot's epoch before a bump can never find it current again.
    const before = e.of('c/hot');
    e.bump('c/hot');
    e.bump('c/p');
    e.bump('c/q');
    expect(e.of('c/hot')).not.toBe(before);
  });

  // Regression: lru-cache also calls `dispose` on overwrite; only an eviction may raise the
  // floor, or every unrelated name's epoch would move (its answers in flight discarded).
  it('bumping one name leaves the epoch of an unrelated name alone while nothing is evicted', () => {
    const e = new Epochs(100);
    const other = e.of('c/other');
    e.bump('c/a');
    e.bump('c/a'); // overwrites c/a's entry: no eviction (2 of 100 used)
    expect(e.of('c/other')).toBe(other);
  });
});
