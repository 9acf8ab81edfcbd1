/**
 * The one interface the read path, every door, prefetch and the transport's
 * chunk server use to reach cached chunks (src/store/tiered.ts implements it
 * over the native DRAM store and the NVMe tier).
 *
 * Synchronous where it can be: peek() and where() answer from memory with no
 * promise, so a DRAM hit costs no tick of the event loop; locate() tells the
 * transport where a chunk's bytes are without reading them.
 *
 * Invariant: every byte this interface returns was checked against the
 * chunk's CRC32C after it last left memory the process controls: a fill is
 * checksummed as it arrives, NVMe reads are verified before they are
 * returned, and DRAM holds only bytes that were.
 */
import type { Chunk, TierStats } from '../tier/tier.js';
import type { ChunkAddress } from './address.js';

export type StoreTier = 'dram' | 'nvme';

export interface StoredChunk {
  readonly chunk: Chunk;
  readonly tier: StoreTier;
}

/** Where a chunk's bytes are now: DRAM (the bytes themselves) or a chunk file (for sendfile). */
export type ChunkLocation =
  | { readonly tier: 'dram'; readonly chunk: Chunk }
  | {
      readonly tier: 'nvme';
      readonly path: string;
      readonly dataOffset: number;
      readonly length: number;
      readonly crc32c: number;
    };

export interface StoreStats {
  readonly dram: TierStats;
  readonly nvme: TierStats | null;
}

export interface ChunkStore {
  /** The chunk if it is in DRAM: synchronous, no I/O. Counts as a use. */
  peek(a: ChunkAddress): Chunk | undefined;
  /** Which tier holds the chunk now, without reading it or counting a use. */
  where(a: ChunkAddress): StoreTier | undefined;
  /**
   * Where the chunk's bytes are, without reading them; counts as a use. An
   * NVMe location can vanish after this returns (eviction): a reader must
   * treat a missing or short file as a miss, and check the CRC32C where it can.
   */
  locate(a: ChunkAddress): ChunkLocation | undefined;
  /** DRAM, else NVMe (verified, then kept in DRAM); undefined on a miss. */
  get(a: ChunkAddress): Promise<StoredChunk | undefined>;
  /**
   * Bytes [offset, offset + length) of a chunk, verified, or undefined on a
   * miss: a slice of the DRAM copy, else read from NVMe by the blocks the
   * range covers (each checked against its block CRC32C; not kept in DRAM).
   */
  readRange(a: ChunkAddress, offset: number, length: number): Promise<Buffer | undefined>;
  /**
   * Memory to fill a chunk of `length` bytes into. Store memory when the
   * budget has room, so put() keeps it without a copy; else ordinary memory
   * (put() then copies, or the chunk is served without being kept in DRAM).
   */
  allocate(length: number): Buffer;
  /**
   * Keeps a filled chunk: in DRAM now, and written through to NVMe in the
   * background (a reader never waits for the disk). Returns the chunk as
   * stored: the same bytes, in store memory when DRAM kept it.
   */
  put(a: ChunkAddress, chunk: Chunk): Chunk;
  stats(): StoreStats;
  close(): Promise<void>;
}
