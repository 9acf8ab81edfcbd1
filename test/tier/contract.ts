/**
 * The Tier contract: every tier (DRAM, NVMe) runs this same suite, so the
 * read path can treat them alike. A tier's own test file adds only what is
 * specific to it.
 *
 * `make()` returns a fresh, empty tier; its capacity (stats().capacityBytes)
 * should be small (tens to hundreds of KiB) so the suite stays fast. Sizes
 * below are fractions of that capacity. `reopen()`, if given, closes nothing:
 * the suite closes the tier first, then reopens on the same backing store.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import type { Chunk, Tier } from '../../src/tier/tier.js';

export interface TierHarness<K = string> {
  tier: Tier<K>;
  reopen?: () => Promise<Tier<K>>;
  cleanup(): Promise<void>;
}

export function chunkOf(data: Buffer): Chunk {
  return { data, crc32c: crc32c(data) };
}

/** A chunk key shaped like chunkKey()'s output. */
export function keyOf(name: string, index = 0): string {
  return JSON.stringify(['origin', 'models', name, '"etag-1"', 1 << 30, 1 << 20, index]);
}

/**
 * `key(name, index)` makes a tier's key: keyOf() strings for NVMe, a
 * ChunkAddress for DRAM.
 */
export function tierContract<K = string>(
  label: string,
  make: () => Promise<TierHarness<K>>,
  key: (name: string, index?: number) => K = keyOf as unknown as (name: string, index?: number) => K,
): void {
  describe(`Tier contract: ${label}`, () => {
    let h: TierHarness<K>;
    let tier: Tier<K>;
    let cap: number;
    const keyOf = key;

    beforeEach(async () => {
      h = await make();
      tier = h.tier;
      cap = tier.stats().capacityBytes;
      expect(tier.stats()).toEqual({ usedBytes: 0, capacityBytes: cap, entries: 0 });
    });
    afterEach(async () => {
      await tier.close();
      await h.cleanup();
    });

    it('returns what was put, byte-exact, with its crc32c', async () => {
      const c = chunkOf(randomBytes(Math.floor(cap / 8)));
      await tier.put(keyOf('a'), c);
      const got = await tier.get(keyOf('a'));
      expect(got).toBeDefined();
      expect(got!.crc32c).toBe(c.crc32c);
      expect(got!.data.equals(c.data)).toBe(true);
    });

    it('answers a miss with undefined', async () => {
      expect(await tier.get(keyOf('never'))).toBeUndefined();
      expect(tier.has(keyOf('never'))).toBe(false);
    });

    it('has() and delete() follow puts', async () => {
      await tier.put(keyOf('a'), chunkOf(randomBytes(100)));
      expect(tier.has(keyOf('a'))).toBe(true);
      expect(await tier.delete(keyOf('a'))).toBe(true);
      expect(tier.has(keyOf('a'))).toBe(false);
      expect(await tier.get(keyOf('a'))).toBeUndefined();
      expect(await tier.delete(keyOf('a'))).toBe(false);
      expect(tier.stats()).toMatchObject({ usedBytes: 0, entries: 0 });
    });

    it('stats() counts data bytes and entries', async () => {
      await tier.put(keyOf('a'), chunkOf(randomBytes(1000)));
      await tier.put(keyOf('b'), chunkOf(randomBytes(3000)));
      expect(tier.stats()).toEqual({ usedBytes: 4000, capacityBytes: cap, entries: 2 });
    });

    it('evicts a chunk not read since it was put before one that was read', async () => {
      const q = Math.floor(cap / 4);
      for (const k of ['a', 'b', 'c', 'd']) await tier.put(keyOf(k), chunkOf(randomBytes(q)));
      expect(tier.stats().entries).toBe(4); // exactly full
      expect(await tier.get(keyOf('a'))).toBeDefined(); // a has been read since it was put
      await tier.put(keyOf('e'), chunkOf(randomBytes(q)));
      expect(tier.has(keyOf('b'))).toBe(false);
      for (const k of ['a', 'c', 'd', 'e']) expect(tier.has(keyOf(k))).toBe(true);
      expect(tier.stats().usedBytes).toBe(4 * q);
    });

    it('does not store a chunk larger than its capacity, and keeps what it has', async () => {
      await tier.put(keyOf('small'), chunkOf(randomBytes(100)));
      await tier.put(keyOf('huge'), chunkOf(randomBytes(cap + 1)));
      expect(tier.has(keyOf('huge'))).toBe(false);
      expect(await tier.get(keyOf('huge'))).toBeUndefined();
      expect(tier.has(keyOf('small'))).toBe(true);
      expect(tier.stats()).toMatchObject({ usedBytes: 100, entries: 1 });
    });

    it('overwriting a key replaces its bytes and its accounting', async () => {
      await tier.put(keyOf('a'), chunkOf(randomBytes(500)));
      const second = chunkOf(randomBytes(700));
      await tier.put(keyOf('a'), second);
      const got = await tier.get(keyOf('a'));
      expect(got?.data.equals(second.data)).toBe(true);
      expect(tier.stats()).toMatchObject({ usedBytes: 700, entries: 1 });
    });

    it('never exceeds maxBytes and serves the last bytes put, over random workloads', async () => {
      const last = new Map<K, Buffer>();
      const keys = new Map<number, K>();
      const keyOfK = (k: number): K => {
        const got = keys.get(k) ?? keyOf(`k${k}`);
        keys.set(k, got);
        return got;
      };
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ k: fc.nat(11), size: fc.integer({ min: 1, max: Math.floor(cap / 3) }) }), {
            minLength: 1,
            maxLength: 25,
          }),
          async (ops) => {
            for (const { k, size } of ops) {
              const data = randomBytes(size);
              await tier.put(keyOfK(k), chunkOf(data));
              last.set(keyOfK(k), data);
              expect(tier.stats().usedBytes).toBeLessThanOrEqual(cap);
              expect(tier.has(keyOfK(k))).toBe(true); // the chunk just put fits
            }
            let sum = 0;
            let entries = 0;
            for (const [key, data] of last) {
              if (!tier.has(key)) continue;
              const got = await tier.get(key);
              expect(got?.data.equals(data)).toBe(true);
              sum += data.length;
              entries++;
            }
            expect(tier.stats()).toMatchObject({ usedBytes: sum, entries });
          },
        ),
        { numRuns: 15 },
      );
    });

    it('keeps its chunks across a close and reopen, if it is persistent', async (ctx) => {
      if (!h.reopen) {
        ctx.skip();
        return;
      }
      const chunks = [0, 1, 2].map((i) => chunkOf(randomBytes(Math.floor(cap / 8) + i)));
      for (const [i, c] of chunks.entries()) await tier.put(keyOf('p', i), c);
      await tier.close();
      tier = await h.reopen();
      expect(tier.stats()).toMatchObject({
        entries: 3,
        usedBytes: chunks.reduce((s, c) => s + c.data.length, 0),
      });
      for (const [i, c] of chunks.entries()) {
        const got = await tier.get(keyOf('p', i));
        expect(got?.crc32c).toBe(c.crc32c);
        expect(got?.data.equals(c.data)).toBe(true);
      }
    });
  });
}
