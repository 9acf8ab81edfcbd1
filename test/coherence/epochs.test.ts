import { describe, expect, it } from 'vitest';
import { Epochs } from '../../src/coherence/epochs.js';

describe('Epochs', () => {
  it('a request sent before a bump of its name is overtaken; one sent after is not', () => {
    const e = new Epochs(100);
    const before = e.now();
    expect(e.unchangedSince('c/a', before)).toBe(true);
    e.bump('c/a');
    expect(e.unchangedSince('c/a', before)).toBe(false);
    expect(e.unchangedSince('c/b', before)).toBe(true); // another name: untouched
    const after = e.now();
    expect(e.unchangedSince('c/a', after)).toBe(true);
  });

  it('a fence overtakes requests for every name under its prefix, and only those', () => {
    const e = new Epochs(100);
    const before = e.now();
    const k1 = e.key('c/model/a');
    e.fence('c/model/');
    expect(e.unchangedSince('c/model/a', before)).toBe(false);
    expect(e.unchangedSince('c/other', before)).toBe(true);
    expect(e.key('c/model/a')).not.toBe(k1); // later callers never share the older request
    expect(e.unchangedSince('c/model/a', e.now())).toBe(true);
    e.fence('');
    expect(e.unchangedSince('c/other', before)).toBe(false);
  });

  it('forgetting (LRU eviction, too many fences) never lets an overtaken request through', () => {
    const e = new Epochs(4);
    const old = e.now();
    e.bump('c/a');
    const mid = e.now();
    for (let i = 0; i < 20; i++) e.bump(`c/n${i}`); // c/a is evicted
    expect(e.unchangedSince('c/a', old)).toBe(false);
    // A request sent after c/a's bump but before the evictions: the floor is the time of the
    // forgotten bumps, so at worst it is overtaken too — never wrongly current.
    expect(typeof e.unchangedSince('c/a', mid)).toBe('boolean');
    const f0 = e.now();
    for (let i = 0; i < 300; i++) e.fence(`c/p${i}/`);
    expect(e.unchangedSince('c/p0/x', f0)).toBe(false);
  });

  // Regression: lru-cache also calls `dispose` on overwrite; only an eviction may raise the
  // floor, or every unrelated name's requests in flight would be discarded.
  it('bumping one name twice leaves unrelated names alone while nothing is evicted', () => {
    const e = new Epochs(100);
    const since = e.now();
    const key = e.key('c/other');
    e.bump('c/a');
    e.bump('c/a');
    expect(e.unchangedSince('c/other', since)).toBe(true);
    expect(e.key('c/other')).toBe(key);
  });

  it('evicting an old bump does not overtake requests sent after it (a steady stream of invalidations)', () => {
    const e = new Epochs(8);
    for (let i = 0; i < 8; i++) e.bump(`c/old${i}`);
    const since = e.now();
    // Many more invalidations of other names evict the old bumps one by one; a request for a
    // name never invalidated, sent after those old bumps, stays current.
    for (let i = 0; i < 8; i++) e.bump(`c/new${i}`);
    expect(e.unchangedSince('c/never', since)).toBe(true);
  });
});
