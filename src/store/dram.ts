/**
 * The DRAM tier: chunk memory owned by the addon's store (addon/src/store/),
 * budgeted by cache.dram.maxBytes there, evicted there by S3-FIFO. JS sees a
 * chunk as an external Buffer over that memory: no copy on a hit or a fill.
 *
 * One Buffer per chunk: the store says when a chunk already has one (lookup
 * answers its serial) and when it left the index (takeRetired), so a hit
 * allocates nothing, and a Buffer of an evicted chunk is let go at once; its
 * memory returns when V8 collects it and no read still uses it.
 *
 * DRAM hits are not re-checksummed: the CRC32C was verified when the chunk
 * entered (fill or NVMe read) and travels with it.
 */
import type { Metrics } from '../metrics/metrics.js';
import type { Chunk, Tier, TierStats } from '../tier/tier.js';
import type { ChunkAddress } from './address.js';
import { createNativeStore, type NativeChunk, type NativeStore, type NativeStoreStats } from './native.js';

export interface DramStoreOptions {
  readonly maxBytes: number;
  readonly metrics?: Metrics;
  /** Called with each chunk evicted for room (the demotion hook), keyed by its canonical key. */
  readonly onEvict?: (key: string, chunk: Chunk) => void;
  /** Retired memory allowed beyond the budget; default maxBytes / 8, within [16 MiB, 128 MiB]. */
  readonly overflowBytes?: number;
  /** Touches of one chunk closer together than this count as one use; default 1000 ms. */
  readonly correlatedMs?: number;
  /** The usual chunk size: whole-chunk fills find their memory resident (see native.ts). */
  readonly chunkSize?: number;
}

const MiB = 2 ** 20;

export class DramStore implements Tier<ChunkAddress> {
  readonly name = 'dram';
  private readonly native: NativeStore;
  /** The one Buffer of each chunk JS has seen, by the store's serial. */
  private readonly views = new Map<number, Chunk>();
  private evictionsSeen = 0;

  constructor(private readonly opts: DramStoreOptions) {
    this.native = createNativeStore({
      maxBytes: opts.maxBytes,
      overflowBytes:
        opts.overflowBytes ?? Math.min(128 * MiB, Math.max(16 * MiB, Math.floor(opts.maxBytes / 8))),
      correlatedMs: opts.correlatedMs ?? 1000,
      keepEvicted: opts.onEvict !== undefined,
      // Enough resident extents for the fills one read-ahead window starts; never more than a quarter of the budget.
      prefaultBytes: opts.chunkSize ?? 0,
      prefaultCount: opts.chunkSize ? Math.min(8, Math.floor(opts.maxBytes / 4 / opts.chunkSize)) : 0,
    });
    const m = opts.metrics;
    if (m) {
      m.tierCapacityBytes.set({ tier: 'dram' }, opts.maxBytes);
      m.dramStats = () => this.native.stats();
    }
  }

  /**
   * The native store itself, for a door whose own threads answer hits from it
   * (the HTTP fast path, the mount's FUSE workers): they look chunks up by
   * (object id, index).
   */
  get nativeStore(): NativeStore {
    return this.native;
  }

  /** Synchronous lookup for the hot path (no promise per hit); counts as a use. */
  peek(a: ChunkAddress): Chunk | undefined {
    const r = this.native.lookup(a.objectId, a.index);
    if (r === undefined) return undefined;
    if (typeof r === 'number') return this.views.get(r);
    return this.remember(r);
  }

  async get(a: ChunkAddress): Promise<Chunk | undefined> {
    return this.peek(a);
  }

  has(a: ChunkAddress): boolean {
    return this.native.contains(a.objectId, a.index);
  }

  /** Store memory for a fill of `length` bytes, or undefined when the budget has no room now. */
  allocate(length: number): Buffer | undefined {
    if (length <= 0 || length > this.opts.maxBytes) return undefined;
    const buf = this.native.allocate(length);
    this.afterChange();
    return buf;
  }

  /**
   * A fill buffer for when allocate() has no room: outside the budget, freed
   * when collected (and the collection hastened), rather than an ordinary
   * Buffer V8 would let pile up under a flood of uncached fills.
   */
  allocateUncached(length: number): Buffer | undefined {
    if (length <= 0 || length > this.opts.maxBytes) return undefined;
    return this.native.allocateUncached(length);
  }

  /**
   * Keeps a chunk: in place when its Buffer came from allocate(), else
   * copied. Returns the chunk as stored, or undefined when it was not kept
   * (larger than the budget, or memory still held by evicted chunks' readers).
   */
  store(a: ChunkAddress, chunk: Chunk): Chunk | undefined {
    if (chunk.data.length === 0 || chunk.data.length > this.opts.maxBytes) return undefined;
    const label = this.opts.onEvict ? a.key : '';
    const r = this.native.commit(a.objectId, a.index, chunk.data, chunk.crc32c >>> 0, label);
    this.afterChange();
    return r ? this.remember(r) : undefined;
  }

  async put(a: ChunkAddress, chunk: Chunk): Promise<void> {
    this.store(a, chunk);
  }

  async delete(a: ChunkAddress): Promise<boolean> {
    const had = this.native.erase(a.objectId, a.index);
    this.afterChange();
    return had;
  }

  stats(): TierStats {
    const s = this.native.stats();
    return { usedBytes: s.dataBytes, capacityBytes: s.capacityBytes, entries: s.entries };
  }

  /** The store's own counters: memory by kind, references, policy queues. */
  nativeStats(): NativeStoreStats {
    return this.native.stats();
  }

  async close(): Promise<void> {
    this.native.clear();
    this.afterChange();
    this.views.clear();
  }

  private remember(r: NativeChunk): Chunk {
    const c: Chunk = { data: r.data, crc32c: r.crc32c };
    if (r.serial > 0) this.views.set(r.serial, c);
    return c;
  }

  /** After anything that can evict: let go of evicted chunks' Buffers, demote, publish. */
  private afterChange(): void {
    for (const serial of this.native.takeRetired()) this.views.delete(serial);
    if (this.opts.onEvict) {
      for (const e of this.native.takeEvicted())
        this.opts.onEvict(e.label, { data: e.data, crc32c: e.crc32c });
    }
    const m = this.opts.metrics;
    if (!m) return;
    const s = this.native.stats();
    if (s.evictions > this.evictionsSeen) {
      m.evictions.inc({ tier: 'dram' }, s.evictions - this.evictionsSeen);
      this.evictionsSeen = s.evictions;
    }
    m.tierUsedBytes.set({ tier: 'dram' }, s.dataBytes);
    m.tierEntries.set({ tier: 'dram' }, s.entries);
  }
}
