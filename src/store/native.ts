/**
 * The typed face of the addon's chunk store (addon/src/store/). Only
 * src/store/dram.ts uses it: everything else sees the ChunkStore interface.
 */
import { binding } from '../transport/binding.js';

export interface NativeStoreOptions {
  /** Budget of charged bytes (each chunk's length rounded up to 4 KiB pages). */
  readonly maxBytes: number;
  /** Evicted chunks still referenced by a Buffer may hold this much beyond the budget. */
  readonly overflowBytes?: number;
  /** Touches of one chunk closer together than this count as one use (0: every touch counts). */
  readonly correlatedMs?: number;
  /** Keep evicted chunks for takeEvicted() (demotion to NVMe). */
  readonly keepEvicted?: boolean;
  /** At most this many evicted chunks wait for takeEvicted(). */
  readonly maxEvicted?: number;
  /**
   * A background thread keeps `prefaultCount` free extents of `prefaultBytes`
   * (the chunk size) resident within the budget, so filling a chunk takes no
   * page faults on the JS thread (0: no thread).
   */
  readonly prefaultBytes?: number;
  readonly prefaultCount?: number;
}

/**
 * A chunk handed to JS: `data` is an external Buffer over store memory
 * holding one reference, dropped when V8 collects it. `serial` > 0 asks the
 * caller to cache this Buffer as the chunk's one Buffer: later lookups answer
 * the serial alone, and takeRetired() says when to let it go. 0: do not cache.
 */
export interface NativeChunk {
  readonly serial: number;
  readonly data: Buffer;
  readonly crc32c: number;
}

export interface NativeEvicted {
  /** The label given at commit (the chunk's canonical key). */
  readonly label: string;
  readonly data: Buffer;
  readonly crc32c: number;
}

export interface NativeStoreStats {
  readonly capacityBytes: number;
  readonly entries: number;
  /** Indexed chunks, in whole pages: what the budget counts. */
  readonly chargedBytes: number;
  /** Indexed chunks, their lengths. */
  readonly dataBytes: number;
  /** Allocated for fills not yet committed. */
  readonly pendingBytes: number;
  /** Evicted or replaced, still referenced (freed when the last Buffer is collected). */
  readonly retiredBytes: number;
  /** Free pages kept resident for the next fill of the same size. */
  readonly warmBytes: number;
  /** Fill buffers from allocateUncached still held by a Buffer (outside the budget; freed when collected). */
  readonly uncachedBytes: number;
  /** Collections the store asked V8 for because spent uncached fill buffers piled up. */
  readonly uncachedCollections: number;
  /** Address space of the arena (sparse: not memory). */
  readonly reservedBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly inserts: number;
  /** Bytes copied in by commit (a Buffer that was not a pending allocation); 0 for in-place commits. */
  readonly copiedBytes: number;
  readonly evictions: number;
  /** Allocations refused: larger than the budget, or retired memory past overflowBytes. */
  readonly refused: number;
  /** Extents made resident ahead of fills by the prefault thread. */
  readonly prefaulted: number;
  readonly demotionsDropped: number;
  /** Live references outside the index (Buffers, sends, demotions): 0 once every reader is done. */
  readonly outstandingRefs: number;
  readonly smallBytes: number;
  readonly mainBytes: number;
}

export interface NativeStore {
  lookup(objectId: Uint8Array, index: number): number | NativeChunk | undefined;
  contains(objectId: Uint8Array, index: number): boolean;
  allocate(length: number): Buffer | undefined;
  /**
   * A fill buffer outside the budget (for a fill the budget has no room for
   * now), whose memory V8 is told about so it is collected soon after its
   * answer is sent; undefined if the kernel refuses the mapping.
   */
  allocateUncached(length: number): Buffer | undefined;
  commit(
    objectId: Uint8Array,
    index: number,
    data: Uint8Array,
    crc32c: number,
    label: string,
  ): NativeChunk | undefined;
  erase(objectId: Uint8Array, index: number): boolean;
  clear(): void;
  takeEvicted(): NativeEvicted[];
  takeRetired(): number[];
  stats(): NativeStoreStats;
  /** The NVMe tier's chunk files as the native doors read them (addon/src/store/nvme_index.h). */
  nvmePut(
    objectId: Uint8Array,
    index: number,
    path: string,
    dataOffset: number,
    dataLength: number,
    dataCrc: number,
    key: string,
  ): boolean;
  nvmeRemove(objectId: Uint8Array, index: number): boolean;
  nvmeClear(): void;
  /** Keys of the chunk files the native doors read since the last call (each once). */
  nvmeTakeUsed(): string[];
  nvmeStats(): NativeNvmeStats;
}

/** What the native doors' NVMe reads did, over every I/O thread. */
export interface NativeNvmeStats {
  readonly entries: number;
  readonly openFiles: number;
  /** Ranges answered with bytes read (and verified) from chunk files. */
  readonly ranges: number;
  /** Whole chunks read into DRAM store memory (as a JavaScript whole-chunk NVMe hit promotes them). */
  readonly promoted: number;
  /** Left to JavaScript: a block failed its CRC32C (or the header was damaged). */
  readonly corrupt: number;
  /** Left to JavaScript: the file was gone, short or unreadable. */
  readonly missing: number;
  /** Left to JavaScript: a thread's bounds on NVMe reads were reached. */
  readonly busy: number;
  /** Read buffers alive (being read, or waiting to be written): 0 when idle. */
  readonly bufferBytes: number;
  readonly readsInFlight: number;
  readonly bytesRead: number;
  readonly bytesServed: number;
  readonly headerReads: number;
}

export function createNativeStore(options: NativeStoreOptions): NativeStore {
  return new (binding().NativeStore)(options);
}
