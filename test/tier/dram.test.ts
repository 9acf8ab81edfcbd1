import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.js';
import { DramTier } from '../../src/tier/dram.js';
import type { Chunk } from '../../src/tier/tier.js';
import { chunkOf, keyOf, tierContract } from './contract.js';

tierContract('dram', async () => ({ tier: new DramTier({ maxBytes: 64 * 1024 }), cleanup: async () => {} }));

describe('DramTier', () => {
  it('hands chunks evicted for room to onEvict (the demotion hook), not deleted ones', async () => {
    const evicted: [string, Chunk][] = [];
    const metrics = new Metrics();
    const tier = new DramTier({ maxBytes: 3000, metrics, onEvict: (k, c) => evicted.push([k, c]) });
    const a = chunkOf(randomBytes(1000));
    await tier.put(keyOf('a'), a);
    await tier.put(keyOf('b'), chunkOf(randomBytes(1000)));
    await tier.put(keyOf('c'), chunkOf(randomBytes(1000)));
    await tier.delete(keyOf('c'));
    expect(evicted).toEqual([]);
    await tier.put(keyOf('d'), chunkOf(randomBytes(1000)));
    await tier.put(keyOf('e'), chunkOf(randomBytes(1000)));
    expect(evicted.map(([k]) => k)).toEqual([keyOf('a')]);
    expect(evicted[0]![1]).toBe(a);
    expect(await metrics.total(metrics.evictions, { tier: 'dram' })).toBe(1);
  });
});
