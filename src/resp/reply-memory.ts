/**
 * A bound on the bytes the RESP door holds for replies, all connections
 * together (resp.maxReplyMemory; docs/resp.md, "Memory").
 *
 * Each connection runs one command at a time, but a value streamed to a
 * client that does not read still holds its chunks: the slice waiting in
 * the socket and the read path's read-ahead behind it (readAhead + 1 chunks). 200 connections
 * pipelining GETRANGEs of 8 MiB and never reading took +1.1 GiB. So a value's
 * reply first takes a share of this budget, sized for the most it can hold,
 * and gives it back once the socket has taken its last byte.
 *
 * When the budget is spent, replies wait their turn (in order) — nothing is
 * read for them meanwhile — and a connection holding a share whose client has
 * not read anything for STALL_MS is closed to give it back, the one stalled
 * longest first (as Redis 7's maxmemory-clients evicts clients). A slow
 * reader alone keeps its share; only one that blocks others is cut.
 */

/** A holder whose client has read nothing for this long may be closed for a waiting reply. */
export const STALL_MS = 250;

/** The connection side of a share: how long its client has not read, and how to close it. */
export interface ReplyOwner {
  /** Since when a write has waited for the client to read (Date.now()), or null. */
  stalledSince(): number | null;
  /** Closes the connection, telling why when it can. */
  evict(message: string): void;
}

export class Share {
  private returned = false;
  constructor(
    private readonly memory: ReplyMemory,
    readonly bytes: number,
    readonly owner: ReplyOwner,
  ) {}

  /** Gives the bytes back (idempotent). */
  release(): void {
    if (this.returned) return;
    this.returned = true;
    this.memory.give(this);
  }
}

interface Waiter {
  bytes: number;
  owner: ReplyOwner;
  /** A reply within one chunk: it cannot hold more than that chunk, and goes first. */
  small: boolean;
  grant(s: Share): void;
}

export class ReplyMemory {
  private usedBytes = 0;
  private readonly shares = new Set<Share>();
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private reclaiming = false;

  constructor(
    readonly max: number,
    /** Called once per connection closed to give its share back. */
    private readonly onEvict: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get used(): number {
    return this.usedBytes;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * A share of `bytes` for `owner`, once there is room; rejects with the
   * signal's reason. `small` replies (within one chunk) are served before
   * larger ones: only a reply larger than the socket's buffer can hold memory
   * for a client that does not read, so under pressure the ones that cannot
   * hoard go first, and a reader of small ranges is not queued behind them.
   */
  acquire(bytes: number, owner: ReplyOwner, signal: AbortSignal, small = false): Promise<Share> {
    signal.throwIfAborted();
    if ((this.waiters.length === 0 || (small && !this.waiters.some((w) => w.small))) && this.fits(bytes)) {
      return Promise.resolve(this.take(bytes, owner));
    }
    return new Promise<Share>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
        this.grant(); // the one behind it may fit now
      };
      const w: Waiter = {
        bytes,
        owner,
        small,
        grant: (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
      this.reclaim();
    });
  }

  /** @internal Share.release */
  give(s: Share): void {
    if (!this.shares.delete(s)) return;
    this.usedBytes -= s.bytes;
    if (this.reclaiming) return; // reclaim() grants once it has closed its victim
    this.grant();
    this.reclaim();
  }

  /** Alone, a reply may take more than the whole budget: it must still be served. */
  private fits(bytes: number): boolean {
    return this.usedBytes === 0 || this.usedBytes + bytes <= this.max;
  }

  private take(bytes: number, owner: ReplyOwner): Share {
    const s = new Share(this, bytes, owner);
    this.shares.add(s);
    this.usedBytes += bytes;
    return s;
  }

  /** Grants waiters in order, small ones first, while the next one fits. */
  private grant(): void {
    for (;;) {
      let i = this.waiters.findIndex((w) => w.small);
      if (i < 0) i = 0;
      const w = this.waiters[i];
      if (!w || !this.fits(w.bytes)) return;
      this.waiters.splice(i, 1);
      w.grant(this.take(w.bytes, w.owner));
    }
  }

  /** While replies wait: close the longest-stalled holders past STALL_MS, or look again when one will be. */
  private reclaim(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.waiters.length > 0) {
      const now = this.now();
      let victim: Share | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      for (const s of this.shares) {
        const since = s.owner.stalledSince();
        if (since !== null && since < oldest) {
          oldest = since;
          victim = s;
        }
      }
      if (!victim || now - oldest < STALL_MS) {
        // Nobody to close yet: look again when the oldest stall qualifies, or, with every holder
        // being read (or still fetching), in a while — their shares come back by themselves
        // unless their clients stop reading, which nothing else would tell us.
        this.timer = setTimeout(() => this.reclaim(), victim ? STALL_MS - (now - oldest) : STALL_MS);
        this.timer.unref();
        return;
      }
      // Every share of that connection goes back: it is closed.
      this.reclaiming = true;
      try {
        for (const s of [...this.shares]) if (s.owner === victim.owner) s.release();
      } finally {
        this.reclaiming = false;
      }
      this.onEvict();
      victim.owner.evict(
        `reply memory (resp.maxReplyMemory, ${this.max} bytes) is needed by other clients and this one has not read for ${now - oldest} ms`,
      );
      this.grant();
    }
  }
}
