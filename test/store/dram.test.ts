/**
 * The native DRAM store through its JS binding: the Tier contract, then what
 * is particular to it — chunks are Buffers over store memory (no copy, one
 * Buffer per chunk), references return to zero, evicted memory stays intact
 * while read and is freed after, a tiny file costs a page and not a chunk,
 * eviction resists one large scan, evicted chunks go to the demotion hook.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { ChunkAddress, chunkAddress } from '../../src/store/address.js';
import { DramStore } from '../../src/store/dram.js';
import type { Chunk } from '../../src/tier/tier.js';
import { chunkOf, tierContract } from '../tier/contract.js';
import { collect } from './gc.js';

const KiB = 1024;

function addr(name: string, index = 0): ChunkAddress {
  return chunkAddress(
    'fs:/origin',
    { container: 'models', key: name, etag: 'e1', size: 1 << 30 },
    1 << 20,
    index,
  );
}

// correlatedMs 0: the contract reads a chunk right after putting it and expects that to count.
tierContract(
  'dram (native store)',
  async () => ({
    tier: new DramStore({ maxBytes: 64 * KiB, correlatedMs: 0 }),
    cleanup: async () => {},
  }),
  addr,
);

describe('DramStore', () => {
  it('keeps a fill in place: the Buffer from allocate() is the chunk served, with no copy', async () => {
    const s = new DramStore({ maxBytes: 1 << 20 });
    const buf = s.allocate(100 * KiB)!;
    expect(buf).toBeDefined();
    buf.set(randomBytes(100 * KiB));
    const stored = s.store(addr('a'), { data: buf, crc32c: crc32c(buf) });
    expect(stored?.data).toBe(buf);
    expect(s.peek(addr('a'))?.data).toBe(buf); // one Buffer per chunk: a hit allocates none
    expect(s.peek(addr('a'))?.crc32c).toBe(crc32c(buf));
    await s.close();
  });

  it('charges whole pages: a 352-byte config.json costs 4 KiB, not a chunk', async () => {
    const s = new DramStore({ maxBytes: 1 << 20 });
    s.store(addr('config.json'), chunkOf(randomBytes(352)));
    expect(s.nativeStats()).toMatchObject({ entries: 1, dataBytes: 352, chargedBytes: 4096 });
    // 256 of them fit in 1 MiB.
    for (let i = 0; i < 255; i++) s.store(addr(`f${i}.json`), chunkOf(randomBytes(352)));
    expect(s.nativeStats()).toMatchObject({ entries: 256, chargedBytes: 1 << 20, evictions: 0 });
    await s.close();
  });

  it('returns every reference once the Buffers are collected', async () => {
    const s = new DramStore({ maxBytes: 1 << 20 });
    // Buffers made inside functions: no stray local keeps one alive.
    const fill = () => {
      for (let i = 0; i < 12; i++) s.store(addr('r', i), chunkOf(randomBytes(64 * KiB)));
    };
    const read = () => Array.from({ length: 12 }, (_, i) => s.peek(addr('r', i))!.data.subarray(10));
    fill();
    let held = read();
    expect(s.nativeStats().outstandingRefs).toBe(12); // one Buffer per chunk, however many reads
    await s.close(); // drops the store's own Buffers; the test still holds views of them
    await collect();
    expect(s.nativeStats().outstandingRefs).toBe(12);
    expect(s.nativeStats().retiredBytes).toBe(12 * 64 * KiB);
    expect(held.every((b) => b.length === 64 * KiB - 10)).toBe(true); // still readable
    held = [];
    await collect();
    expect(s.nativeStats()).toMatchObject({ outstandingRefs: 0, retiredBytes: 0, chargedBytes: 0 });
  });

  it('never changes bytes a reader holds: an evicted chunk stays intact until collected, then is freed', async () => {
    const s = new DramStore({ maxBytes: 256 * KiB, correlatedMs: 0 });
    // Not read since it was put: the next chunk to go.
    let reader: Buffer | undefined = s
      .store(addr('held'), chunkOf(randomBytes(64 * KiB)))!
      .data.subarray(1000, 2000);
    const copy = Buffer.from(reader);
    for (let i = 0; i < 20; i++) s.store(addr('churn', i), chunkOf(Buffer.alloc(64 * KiB, i + 1)));
    expect(s.has(addr('held'))).toBe(false);
    expect(reader.equals(copy)).toBe(true); // its pages were not reused for the churn
    expect(s.nativeStats().retiredBytes).toBeGreaterThanOrEqual(64 * KiB);
    reader = undefined;
    await collect();
    expect(s.nativeStats().retiredBytes).toBe(0);
    await s.close();
  });

  it('keeps chunks read again through one scan larger than itself', async () => {
    const s = new DramStore({ maxBytes: 100 * 64 * KiB, correlatedMs: 0 });
    const hot = Array.from({ length: 20 }, (_, i) => addr('hot', i));
    for (const a of hot) s.store(a, chunkOf(randomBytes(64 * KiB)));
    for (let round = 0; round < 2; round++) for (const a of hot) expect(s.peek(a)).toBeDefined();
    for (let i = 0; i < 400; i++) s.store(addr('scan', i), chunkOf(randomBytes(64 * KiB)));
    expect(hot.filter((a) => s.has(a)).length).toBe(20);
    await s.close();
  });

  it('counts touches closer than correlatedMs as one use', async () => {
    const s = new DramStore({ maxBytes: 100 * 64 * KiB, correlatedMs: 60_000 });
    const hot = Array.from({ length: 20 }, (_, i) => addr('burst', i));
    for (const a of hot) s.store(a, chunkOf(randomBytes(64 * KiB)));
    // 64 reads of each in a burst (a loader reading 64 KiB ranges): still one use.
    for (let r = 0; r < 64; r++) for (const a of hot) s.peek(a);
    for (let i = 0; i < 400; i++) s.store(addr('scan', i), chunkOf(randomBytes(64 * KiB)));
    expect(hot.filter((a) => s.has(a)).length).toBe(0);
    await s.close();
  });

  it('hands chunks evicted for room to onEvict with their key (demotion), not deleted ones', async () => {
    const evicted: [string, Chunk][] = [];
    const metrics = new Metrics();
    const s = new DramStore({ maxBytes: 12 * KiB, metrics, onEvict: (k, c) => evicted.push([k, c]) });
    const a = chunkOf(randomBytes(4 * KiB));
    s.store(addr('a'), a);
    s.store(addr('b'), chunkOf(randomBytes(4 * KiB)));
    s.store(addr('c'), chunkOf(randomBytes(4 * KiB)));
    await s.delete(addr('c'));
    expect(evicted).toEqual([]);
    s.store(addr('d'), chunkOf(randomBytes(4 * KiB)));
    s.store(addr('e'), chunkOf(randomBytes(4 * KiB)));
    expect(evicted.map(([k]) => k)).toEqual([addr('a').key]);
    expect(evicted[0]![1].data.equals(a.data)).toBe(true);
    expect(evicted[0]![1].crc32c).toBe(a.crc32c);
    expect(await metrics.total(metrics.evictions, { tier: 'dram' })).toBe(1);
    await s.close();
  });

  it('refuses what it cannot hold: a chunk over the budget, and fills past the retired-memory allowance', async () => {
    const s = new DramStore({ maxBytes: 64 * KiB, overflowBytes: 32 * KiB, correlatedMs: 0 });
    expect(s.allocate(64 * KiB + 1)).toBeUndefined();
    expect(s.store(addr('big'), chunkOf(randomBytes(64 * KiB + 1)))).toBeUndefined();
    expect(s.stats().entries).toBe(0);
    const held = [0, 1, 2, 3].map((i) => s.store(addr('h', i), chunkOf(randomBytes(16 * KiB)))!.data);
    // Each new chunk evicts a held one; held chunks stay in memory: 32 KiB allowed, then refused.
    expect(s.store(addr('n', 0), chunkOf(randomBytes(16 * KiB)))).toBeDefined();
    expect(s.store(addr('n', 1), chunkOf(randomBytes(16 * KiB)))).toBeDefined();
    expect(s.store(addr('n', 2), chunkOf(randomBytes(16 * KiB)))).toBeUndefined();
    expect(s.nativeStats().refused).toBe(1);
    expect(held.length).toBe(4);
    await s.close();
  });

  it('gives a fill the budget has no room for a mapping of its own: not charged, kept by a copy, unmapped once collected', async () => {
    const s = new DramStore({ maxBytes: 64 * KiB, correlatedMs: 0 });
    expect(s.allocateUncached(64 * KiB + 1)).toBeUndefined();
    const fill = () => {
      const buf = s.allocateUncached(16 * KiB)!;
      buf.set(randomBytes(16 * KiB));
      expect(s.nativeStats()).toMatchObject({ uncachedBytes: 16 * KiB, chargedBytes: 0, pendingBytes: 0 });
      const kept = s.store(addr('u'), { data: buf, crc32c: crc32c(buf) })!;
      expect(kept.data).not.toBe(buf); // the store publishes only memory it owns
      expect(kept.data.equals(buf)).toBe(true);
    };
    fill();
    await collect();
    expect(s.nativeStats().uncachedBytes).toBe(0);
    await s.close();
  });

  it('asks V8 for a collection once spent uncached fill buffers pile up, so their memory returns', async () => {
    const s = new DramStore({ maxBytes: 1 << 20 });
    const spend = () => {
      for (let i = 0; i < 40; i++) s.allocateUncached(1 << 20)!.fill(i);
    };
    spend();
    expect(s.nativeStats().uncachedCollections).toBeGreaterThanOrEqual(1);
    // Finalizers run on later turns of the event loop; no gc() from the test.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
    expect(s.nativeStats().uncachedBytes).toBeLessThan(16 << 20);
    await s.close();
  });

  it('rejects bad arguments with a message naming them', () => {
    const s = new DramStore({ maxBytes: 64 * KiB });
    const bad = new ChunkAddress(Buffer.alloc(3), addr('x').name);
    expect(() => s.peek(bad)).toThrow(/object id is 16 bytes/);
    expect(() => new DramStore({ maxBytes: 100 })).toThrow(/at least one page/);
  });
});
