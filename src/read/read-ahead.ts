/**
 * Read-ahead across requests. A loader reads a shard as a run of range
 * requests (4 MiB at a time, often from several connections at once), each
 * of which the read path answers from one chunk. Without looking ahead a
 * cold read is store-and-forward: the origin idles while a chunk is sent,
 * the client idles while the next is fetched. When the reads of one object
 * move forward, this says which chunks past the head to fetch now, so the
 * origin is busy while the client receives (Linux's readahead, per object).
 *
 * A read counts as sequential when it starts within the window behind the
 * head or just past it (concurrent connections reading neighbouring chunks
 * arrive slightly out of order). Each sequential read doubles the window, up
 * to `max` chunks; a read elsewhere resets it. The objects followed are
 * bounded (`tracked`), least recently read forgotten first.
 */
export class ReadAhead {
  /** Per object: the next chunk index the reads are expected to ask for, and the window. */
  private readonly heads = new Map<string, { next: number; window: number }>();

  constructor(
    private readonly max: number,
    private readonly tracked = 1024,
  ) {}

  /**
   * A read of chunks [first, last] of an object of `count` chunks. Returns
   * the chunks to fetch ahead, [from, to), empty when the reads do not move
   * forward (or read-ahead is off).
   */
  next(object: string, first: number, last: number, count: number): { from: number; to: number } {
    const none = { from: 0, to: 0 };
    if (this.max <= 0) return none;
    const head = this.heads.get(object);
    this.heads.delete(object); // re-inserted below: Map order is recency order
    const sequential = head !== undefined && first >= head.next - head.window && first <= head.next + 1;
    const window = sequential ? Math.min(this.max, head.window * 2) : 1;
    const next = Math.max(last + 1, sequential ? head.next : 0);
    this.heads.set(object, { next, window });
    if (this.heads.size > this.tracked) this.heads.delete(this.heads.keys().next().value!);
    // A first read of an object (chunk 0) is the start of a load: look ahead at once.
    if (!sequential && first !== 0) return none;
    return { from: next, to: Math.min(count, last + 1 + window) };
  }
}
