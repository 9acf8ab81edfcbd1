/**
 * The NVMe tier's index: the chunk files it holds, in least-recently-used
 * order, and the sum of their data lengths (what the byte budget counts).
 *
 * With a native sink attached (the native store's view of the chunk files,
 * addon/src/store/nvme_index.h), every version 2 file indexed here is
 * published to it and removed from it the moment it leaves this index —
 * before the tier unlinks, replaces or drops the file — so the native doors'
 * I/O threads never start a read of a file the tier has given up.
 */
import type { NativeStore } from '../store/native.js';
import type { IndexEntry } from './nvme-scan.js';

/** The native store's NVMe view: the part of NativeStore the tier publishes its chunk files to. */
export type NativeNvmeSink = Pick<NativeStore, 'nvmePut' | 'nvmeRemove' | 'nvmeClear' | 'nvmeTakeUsed'>;

/** A version 2 file's name: `{object id hex}-{index}` (chunk-file.ts chunkFileName). */
const V2_NAME = /([0-9a-f]{32})-(0|[1-9][0-9]{0,9})$/;

function chunkIdOf(e: IndexEntry): { objectId: Buffer; index: number } | undefined {
  if (e.format !== 2) return undefined;
  const m = V2_NAME.exec(e.path);
  if (!m) return undefined;
  const index = Number(m[2]);
  return index <= 0xffffffff ? { objectId: Buffer.from(m[1]!, 'hex'), index } : undefined;
}

export class ChunkIndex {
  /** Map order is LRU order: first = least recently used. */
  private readonly byKey = new Map<string, IndexEntry>();
  private used = 0;
  private sink: NativeNvmeSink | undefined;

  /** Publishes every entry to `sink`, and from now on each change. */
  attach(sink: NativeNvmeSink): void {
    this.sink = sink;
    for (const e of this.byKey.values()) this.publish(e);
  }

  /** Empties the sink and stops publishing (the tier closes). */
  detach(): void {
    this.sink?.nvmeClear();
    this.sink = undefined;
  }

  private publish(e: IndexEntry): void {
    const id = this.sink && chunkIdOf(e);
    if (id)
      this.sink!.nvmePut(id.objectId, id.index, e.path, e.dataOffset, e.dataLength, e.crc32c >>> 0, e.key);
  }

  private unpublish(e: IndexEntry): void {
    const id = this.sink && chunkIdOf(e);
    if (id) this.sink!.nvmeRemove(id.objectId, id.index);
  }

  get(key: string): IndexEntry | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Data bytes of every file indexed. */
  get usedBytes(): number {
    return this.used;
  }

  /** Adds or replaces an entry, as the most recently used. */
  add(e: IndexEntry): void {
    const prev = this.byKey.get(e.key);
    if (prev) {
      this.used -= prev.dataLength;
      this.unpublish(prev);
    }
    this.byKey.delete(e.key);
    this.byKey.set(e.key, e);
    this.used += e.dataLength;
    this.publish(e);
  }

  forget(key: string): void {
    const e = this.byKey.get(key);
    if (!e) return;
    this.unpublish(e); // first: no native read of the file starts after this
    this.byKey.delete(key);
    this.used -= e.dataLength;
  }

  /** Makes `entry` the most recently used. */
  touch(key: string, entry: IndexEntry): void {
    this.byKey.delete(key);
    this.byKey.set(key, entry);
  }

  /** Removes least-recently-used entries until at most `bytes` are indexed; returns them. */
  evictDownTo(bytes: number): IndexEntry[] {
    const victims: IndexEntry[] = [];
    if (this.used <= bytes) return victims;
    // Chunks the native doors read since the last eviction are uses too: most recent first.
    for (const key of this.sink?.nvmeTakeUsed() ?? []) {
      const e = this.byKey.get(key);
      if (e) this.touch(key, e);
    }
    for (const [key, e] of this.byKey) {
      if (this.used <= bytes) break;
      this.forget(key);
      victims.push(e);
    }
    return victims;
  }

  values(): IterableIterator<IndexEntry> {
    return this.byKey.values();
  }
}
