/**
 * The ChunkStore of a node or sidecar: the native DRAM store in front of the
 * NVMe tier.
 *
 * - A fill goes to DRAM (in place when it was read into allocate()'d
 *   memory) and is written through to NVMe in the background, so a restart
 *   finds every chunk ever filled and no reader waits for the disk.
 * - An NVMe hit of a whole chunk is verified by the tier, then kept in DRAM;
 *   part of a chunk (readRange) is read by the 4 KiB blocks that hold it,
 *   each verified, and not kept.
 * - A chunk DRAM evicts is demoted to NVMe if NVMe does not hold it (fills
 *   already wrote it through; this covers chunks NVMe dropped or evicted).
 */
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NvmeTier } from '../tier/nvme.js';
import type { Chunk } from '../tier/tier.js';
import type { ChunkAddress } from './address.js';
import type { ChunkLocation, ChunkStore, StoredChunk, StoreStats, StoreTier } from './chunk-store.js';
import { DramStore } from './dram.js';

export interface TieredStoreOptions {
  readonly dramBytes: number;
  /** cache.chunkSize: DRAM keeps memory for whole-chunk fills resident ahead of them. */
  readonly chunkSize?: number;
  readonly nvme: NvmeTier | null;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Touches of one DRAM chunk closer together than this count as one use (default 1000 ms). */
  readonly correlatedMs?: number;
}

/**
 * NVMe writes in flight at once. Chunk file writes run on libuv's thread
 * pool, which fs origin reads share (NVMe reads have their own native
 * reader): a burst of write-through must not occupy every thread while a
 * reader waits for its chunk. Writes past these wait here, in order.
 */
export const NVME_WRITES_IN_FLIGHT = 2;
/**
 * Bytes of chunks waiting beyond that, in chunks of cache.chunkSize (64 ×
 * 4 MiB = 256 MiB): a bound on the memory the queue holds, whatever the
 * chunk size; a write past it is dropped (counted), as NvmeTier drops past
 * its own bound. A chunk already queued or being written is not queued
 * again (a fill that DRAM evicts at once would otherwise take two places).
 */
export const NVME_WRITES_QUEUED_CHUNKS = 64;
const DEFAULT_CHUNK_BYTES = 4 << 20;

export class TieredStore implements ChunkStore {
  readonly dram: DramStore;
  private readonly nvme: NvmeTier | null;
  private readonly writes: Array<{ key: string; chunk: Chunk }> = [];
  /** Keys queued or being written. */
  private readonly pending = new Set<string>();
  private queuedBytes = 0;
  private writing = 0;
  private flushed: (() => void) | undefined;

  constructor(private readonly o: TieredStoreOptions) {
    this.nvme = o.nvme;
    const nvme = o.nvme;
    this.dram = new DramStore({
      maxBytes: o.dramBytes,
      metrics: o.metrics,
      correlatedMs: o.correlatedMs,
      chunkSize: o.chunkSize,
      onEvict: nvme
        ? (key, chunk) => {
            if (!nvme.has(key)) this.writeThrough(key, chunk);
          }
        : undefined,
    });
    // The native doors read NVMe hits themselves: they see the tier's chunk files through the native store.
    if (nvme) {
      nvme.attachNative(this.dram.nativeStore);
      const native = this.dram.nativeStore;
      if (o.metrics) o.metrics.nativeNvmeStats = () => native.nvmeStats();
    }
  }

  peek(a: ChunkAddress): Chunk | undefined {
    return this.dram.peek(a);
  }

  where(a: ChunkAddress): StoreTier | undefined {
    if (this.dram.has(a)) return 'dram';
    if (this.nvme?.has(a.key)) return 'nvme';
    return undefined;
  }

  locate(a: ChunkAddress): ChunkLocation | undefined {
    const hot = this.dram.peek(a);
    if (hot) return { tier: 'dram', chunk: hot };
    const loc = this.nvme?.locate(a.key);
    return loc ? { tier: 'nvme', ...loc } : undefined;
  }

  async get(a: ChunkAddress): Promise<StoredChunk | undefined> {
    const hot = this.dram.peek(a);
    if (hot) return { chunk: hot, tier: 'dram' };
    const cold = await this.nvme?.get(a.key);
    if (!cold) return undefined;
    return { chunk: this.dram.store(a, cold) ?? cold, tier: 'nvme' };
  }

  async readRange(a: ChunkAddress, offset: number, length: number): Promise<Buffer | undefined> {
    const hot = this.dram.peek(a);
    if (hot)
      return offset + length <= hot.data.length ? hot.data.subarray(offset, offset + length) : undefined;
    // Only the blocks the range covers, verified, not promoted: a 64 KiB hit
    // must not read (or displace DRAM for) a whole 4 MiB chunk.
    return this.nvme?.readRange(a.key, offset, length);
  }

  allocate(length: number): Buffer {
    return this.dram.allocate(length) ?? this.dram.allocateUncached(length) ?? Buffer.allocUnsafe(length);
  }

  put(a: ChunkAddress, chunk: Chunk): Chunk {
    const kept = this.dram.store(a, chunk);
    if (!kept) this.o.metrics.dramUncachedFills.inc();
    const stored = kept ?? chunk;
    if (this.nvme) this.writeThrough(a.key, stored);
    return stored;
  }

  stats(): StoreStats {
    return { dram: this.dram.stats(), nvme: this.nvme?.stats() ?? null };
  }

  async close(): Promise<void> {
    // Queued and pending chunk writes finish first: what was filled survives the restart.
    if (this.writing > 0) await new Promise<void>((resolve) => (this.flushed = resolve));
    await this.nvme?.close();
    await this.dram.close();
  }

  private writeThrough(key: string, chunk: Chunk): void {
    if (!this.nvme || this.pending.has(key)) return;
    const limit = NVME_WRITES_QUEUED_CHUNKS * (this.o.chunkSize ?? DEFAULT_CHUNK_BYTES);
    if (this.queuedBytes + chunk.data.length > limit) {
      this.o.metrics.tierErrors.inc({ tier: 'nvme', op: 'overload' });
      return;
    }
    this.pending.add(key);
    this.queuedBytes += chunk.data.length;
    this.writes.push({ key, chunk });
    this.pump();
  }

  private pump(): void {
    const nvme = this.nvme;
    while (nvme && this.writing < NVME_WRITES_IN_FLIGHT && this.writes.length > 0) {
      const { key, chunk } = this.writes.shift()!;
      this.queuedBytes -= chunk.data.length;
      this.writing++;
      void nvme
        .put(key, chunk)
        .catch((err: unknown) => this.o.log.warn({ err }, 'nvme put failed'))
        .finally(() => {
          this.pending.delete(key);
          this.writing--;
          this.pump();
          if (this.writing === 0) this.flushed?.();
        });
    }
  }
}
