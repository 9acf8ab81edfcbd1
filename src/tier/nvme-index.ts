/**
 * The NVMe tier's index: the chunk files it holds, in least-recently-used
 * order, and the sum of their data lengths (what the byte budget counts).
 */
import type { IndexEntry } from './nvme-scan.js';

export class ChunkIndex {
  /** Map order is LRU order: first = least recently used. */
  private readonly byKey = new Map<string, IndexEntry>();
  private used = 0;

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
    if (prev) this.used -= prev.dataLength;
    this.byKey.delete(e.key);
    this.byKey.set(e.key, e);
    this.used += e.dataLength;
  }

  forget(key: string): void {
    const e = this.byKey.get(key);
    if (!e) return;
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
