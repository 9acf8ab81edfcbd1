/**
 * DRAM tier: an LRU bounded by bytes (lru-cache's maxSize). Chunks evicted to
 * make room are handed to `onEvict`, which the node wires to the NVMe tier
 * (demotion), so a chunk pushed out of memory is still a local hit.
 *
 * DRAM hits are not re-checksummed: the checksum was verified when the chunk
 * entered (fill or NVMe read) and travels with it; recomputing it per hit
 * would cap a core at ~8 GB/s of CRC work for no defence against anything but
 * RAM faults, which ECC covers.
 */
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics/metrics.js';
import type { Chunk, Tier, TierStats } from './tier.js';

export interface DramTierOptions {
  readonly maxBytes: number;
  readonly metrics?: Metrics;
  /** Called with each chunk evicted for room (not for delete/replace). */
  readonly onEvict?: (key: string, chunk: Chunk) => void;
}

export class DramTier implements Tier {
  readonly name = 'dram';
  private readonly lru: LRUCache<string, Chunk>;
  private readonly maxBytes: number;

  constructor(private readonly opts: DramTierOptions) {
    this.maxBytes = opts.maxBytes;
    this.lru = new LRUCache<string, Chunk>({
      // lru-cache needs a positive maxSize; a 0-byte DRAM budget keeps nothing.
      maxSize: Math.max(1, opts.maxBytes),
      sizeCalculation: (c) => Math.max(1, c.data.length),
      dispose: (chunk, key, reason) => {
        if (reason !== 'evict') return;
        opts.metrics?.evictions.inc({ tier: 'dram' });
        opts.onEvict?.(key, chunk);
      },
    });
    opts.metrics?.tierCapacityBytes.set({ tier: 'dram' }, opts.maxBytes);
  }

  async get(key: string): Promise<Chunk | undefined> {
    return this.lru.get(key);
  }

  /** Synchronous lookup for the hot path (no promise per hit). */
  peek(key: string): Chunk | undefined {
    return this.lru.get(key);
  }

  async put(key: string, chunk: Chunk): Promise<void> {
    if (chunk.data.length > this.maxBytes) return; // would evict everything and still not fit
    this.lru.set(key, chunk);
    this.publish();
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  async delete(key: string): Promise<boolean> {
    const had = this.lru.delete(key);
    this.publish();
    return had;
  }

  stats(): TierStats {
    return { usedBytes: this.lru.calculatedSize, capacityBytes: this.maxBytes, entries: this.lru.size };
  }

  async close(): Promise<void> {
    this.lru.clear();
  }

  private publish(): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.tierUsedBytes.set({ tier: 'dram' }, this.lru.calculatedSize);
    m.tierEntries.set({ tier: 'dram' }, this.lru.size);
  }
}
