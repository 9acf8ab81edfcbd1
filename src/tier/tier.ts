/**
 * A place that holds chunks: DRAM (store/dram.ts) or NVMe (tier/nvme.ts).
 * Both pass the same contract suite (test/tier/contract.ts). The read path
 * reaches them through one ChunkStore (src/store/chunk-store.ts).
 *
 * A tier is keyed by `K`: NVMe by chunkKey() strings, DRAM by ChunkAddress
 * (the object id and index the native store is keyed by). Tiers store a
 * chunk's bytes together with the CRC32C computed when it was filled. A tier never returns bytes
 * whose checksum it has reason to doubt: NVMe verifies every read, and a
 * mismatch is reported as a miss (and counted), never as data.
 */

export interface Chunk {
  readonly data: Buffer;
  /** CRC32C of `data`, computed at fill. */
  readonly crc32c: number;
}

export interface TierStats {
  readonly usedBytes: number;
  readonly capacityBytes: number;
  readonly entries: number;
}

export interface Tier<K = string> {
  readonly name: 'dram' | 'nvme';

  /** The chunk, or undefined on a miss (including a chunk that failed its checksum). */
  get(key: K): Promise<Chunk | undefined>;

  /**
   * Stores a chunk, evicting others (by the tier's policy) to make room. Never
   * throws for a full or failing device: a tier that cannot store simply
   * does not, and says so in metrics and logs (the cache degrades, it does not fail).
   */
  put(key: K, chunk: Chunk): Promise<void>;

  has(key: K): boolean;
  delete(key: K): Promise<boolean>;
  stats(): TierStats;
  close(): Promise<void>;
}
