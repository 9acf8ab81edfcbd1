/**
 * SCAN cursors. Redis clients expect a decimal cursor and 0 for "done", and
 * the origin listing is in key order but has no "start after" parameter. So a
 * cursor is a small integer naming "the last key returned" in a bounded
 * table: the next page re-lists the prefix and skips up to that key. Resuming
 * after a key (not an offset) keeps SCAN's guarantee: a key present for the
 * whole iteration is returned, even if others are added or removed meanwhile.
 * Old cursors are evicted (LRU); an evicted or made-up cursor is an error, not
 * a silent restart, so a client never loops forever.
 */
import { LRUCache } from 'lru-cache';

export interface CursorState {
  readonly container: string;
  readonly prefix: string;
  readonly pattern: string;
  readonly lastKey: string;
}

export class ScanCursors {
  private readonly table: LRUCache<number, CursorState>;
  private nextId = 1;

  constructor(max = 4096) {
    this.table = new LRUCache({ max });
  }

  save(state: CursorState): number {
    const id = this.nextId;
    // Cursors stay below 2^53 so clients that parse them as doubles (redis-py: int()) agree.
    this.nextId = this.nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextId + 1;
    this.table.set(id, state);
    return id;
  }

  /** The state a cursor names; it stays valid (a client may retry a page). */
  get(id: number): CursorState | undefined {
    return this.table.get(id);
  }
}
