/**
 * The home's record of the leases it granted, per name, and of the
 * invalidations in progress (docs/coherence.md, "Invalidation"). Pure state: no
 * I/O. The caller sends the LEASE_REVOKE frames this table asks for, feeds it
 * the acknowledgements, and answers an invalidation once `isComplete` says so.
 *
 * Invariants it keeps (the ones spec/coherence.pml checks):
 *   - a lease is counted from the moment the home grants it, for the term it
 *     granted; the holder counts from its send, minus a margin, so it stops
 *     first;
 *   - an invalidation revokes EVERY lease outstanding on the name when it
 *     starts, whatever version (a holder may hold an older lease than the last
 *     grant the home sent it, if that grant was lost);
 *   - an acknowledgement counts only for the revocation it names;
 *   - a home that is not yet settled (it became home less than `settleMs` ago)
 *     does not know its predecessor's leases: it completes an invalidation only
 *     after its own holders are done AND either it has settled or
 *     (1 + ρ)·term has passed since the re-resolve answered.
 *
 * Time is an injectable monotonic clock in milliseconds (tests drive it).
 */

export interface HomeLeasesOptions {
  /** Lease term granted, ms (leases.term). */
  readonly termMs: number;
  /** ρ: bound on the clock-rate ratio between two processes, minus 1 (e.g. 0.001). */
  readonly driftRatio: number;
  /** How long after becoming home before this home can vouch for every lease: (1+ρ)·term + membership lag. */
  readonly settleMs: number;
  /** Leases tracked at once; past it, grant() refuses (the holder reads the origin instead). */
  readonly maxLeases?: number;
  /** Monotonic milliseconds; defaults to performance.now(). */
  readonly now?: () => number;
  /**
   * No other process can hold a lease from this one or a predecessor (a lone node
   * without a transport listener): settled from the start. Membership changes
   * (becameHome*) still unsettle it.
   */
  readonly settledAtStart?: boolean;
}

interface Lease {
  readonly version: string;
  readonly expiresAt: number;
}

interface Invalidation {
  readonly revokeId: number;
  /** Holders whose lease was outstanding at the start, with when it runs out on our clock. */
  readonly waiting: Map<string, number>;
  /** When the re-resolve at the origin answered (the new version), on our clock. */
  resolvedAt: number | null;
}

export interface GrantResult {
  readonly termMs: number;
}

export class HomeLeases {
  private readonly leases = new Map<string, Map<string, Lease>>();
  private readonly pending = new Map<string, Invalidation>();
  private readonly homeSince = new Map<string, number>();
  /** Since when this process is home of every name it is home of: its start, or the last membership change. */
  private allSince: number;
  private readonly now: () => number;
  private readonly maxLeases: number;
  private count = 0;
  private lastFullSweep = Number.NEGATIVE_INFINITY;
  private nextRevokeId = 1;

  constructor(private readonly opts: HomeLeasesOptions) {
    if (!(opts.termMs > 0)) throw new RangeError(`termMs must be > 0, got ${opts.termMs}`);
    if (!(opts.driftRatio >= 0)) throw new RangeError(`driftRatio must be >= 0, got ${opts.driftRatio}`);
    const minSettle = (1 + opts.driftRatio) * opts.termMs;
    if (!(opts.settleMs >= minSettle)) {
      throw new RangeError(
        `settleMs must be >= (1 + driftRatio) * termMs = ${minSettle}, got ${opts.settleMs}`,
      );
    }
    this.now = opts.now ?? (() => performance.now());
    this.maxLeases = opts.maxLeases ?? 1_000_000;
    // A (re)started home has lost its table: it is a new home for every name.
    this.allSince = opts.settledAtStart ? this.now() - opts.settleMs : this.now();
  }

  /**
   * Records a lease on `version` for `holder` and returns the term to grant:
   * never past `bindingExpiresAt` (a lease must not outlive the origin read it
   * derives from). Null: no lease (table full, or the binding has run out); the
   * holder resolves at the origin for that read. 'wait': an invalidation is
   * re-resolving the name; grant after `resolved()`, never the old version.
   */
  grant(
    name: string,
    holder: string,
    version: string,
    bindingExpiresAt: number,
  ): GrantResult | 'wait' | null {
    const inv = this.pending.get(name);
    if (inv && inv.resolvedAt === null) return 'wait';
    const now = this.now();
    const termMs = Math.min(this.opts.termMs, bindingExpiresAt - now);
    if (termMs <= 0) return null;
    let byHolder = this.leases.get(name);
    const prev = byHolder?.get(holder);
    if (!prev && this.count >= this.maxLeases) {
      // A full sweep costs the whole table: at most once a second, however many grants are refused.
      if (now - this.lastFullSweep >= 1000) {
        this.lastFullSweep = now;
        this.sweepAll();
      }
      if (this.count >= this.maxLeases) return null;
    }
    if (!byHolder) {
      byHolder = new Map();
      this.leases.set(name, byHolder);
    }
    // Keep the later expiry: an earlier grant to this holder (maybe lost, maybe
    // not) may still be in use until then.
    const expiresAt = Math.max(now + termMs, prev?.expiresAt ?? 0);
    byHolder.set(holder, { version, expiresAt });
    if (!prev) this.count++;
    return { termMs };
  }

  /** A holder gave up its lease early (LEASE_ACK with revokeId 0: eviction, shutdown). */
  /** True when a pending invalidation was waiting for this holder (the release counts as its ack). */
  release(name: string, holder: string): boolean {
    const byHolder = this.leases.get(name);
    if (byHolder?.delete(holder)) this.count--;
    if (byHolder?.size === 0) this.leases.delete(name);
    // The holder holds nothing on the name any more (it releases at shutdown): as good as an ack.
    return this.pending.get(name)?.waiting.delete(holder) ?? false;
  }

  /** A membership change made this process home of `name` now. */
  becameHome(name: string): void {
    this.homeSince.set(name, this.now());
  }

  /**
   * The member list changed: this process may have become home of any name,
   * and does not know which, so it counts as a new home of all of them.
   */
  becameHomeOfAll(): void {
    this.allSince = this.now();
    this.homeSince.clear();
  }

  isSettled(name: string): boolean {
    return this.msUntilSettled(name) <= 0;
  }

  /** How long until this home can vouch for every lease on `name` (≤ 0: settled). */
  msUntilSettled(name: string): number {
    const since = Math.max(this.homeSince.get(name) ?? this.allSince, this.allSince);
    return since + this.opts.settleMs - this.now();
  }

  /** The same for every name: how long until no lease granted by a predecessor can be alive. */
  msUntilAllSettled(): number {
    let since = this.allSince;
    for (const t of this.homeSince.values()) since = Math.max(since, t);
    return since + this.opts.settleMs - this.now();
  }

  /** Names with a lease outstanding or an invalidation pending whose id starts with `idPrefix` (at most `limit`). */
  names(idPrefix: string, limit: number): string[] {
    const out = new Set<string>();
    for (const m of [this.leases, this.pending]) {
      for (const id of m.keys()) {
        if (out.size >= limit) return [...out];
        if (id.startsWith(idPrefix)) out.add(id);
      }
    }
    return [...out];
  }

  /**
   * Starts invalidating `name` (step 1 of the protocol): marks it pending and
   * returns the revokeId and the holders to send LEASE_REVOKE to. An invalidation
   * already pending is joined, not restarted: its revoke set already covers
   * every lease granted before it, and leases granted since are on the new version.
   */
  beginInvalidation(name: string): { revokeId: number; holders: string[] } {
    const joined = this.pending.get(name);
    if (joined) return { revokeId: joined.revokeId, holders: this.unacked(name) };
    this.sweep(name);
    const waiting = new Map<string, number>();
    for (const [holder, lease] of this.leases.get(name) ?? []) waiting.set(holder, lease.expiresAt);
    const inv: Invalidation = { revokeId: this.nextRevokeId++, waiting, resolvedAt: null };
    this.pending.set(name, inv);
    return { revokeId: inv.revokeId, holders: [...waiting.keys()] };
  }

  /** The origin answered the re-resolve (step 2): the new version is bound from now. */
  resolved(name: string): void {
    const inv = this.pending.get(name);
    if (inv && inv.resolvedAt === null) inv.resolvedAt = this.now();
  }

  isPending(name: string): boolean {
    return this.pending.has(name);
  }

  /** A REVOKE_ACK. Counts only for the revocation it names; stale or duplicate ones are ignored. */
  ack(name: string, holder: string, revokeId: number): boolean {
    const inv = this.pending.get(name);
    // The lease stays in the table until it runs out: a grant to this holder since
    // the invalidation started (new version) may share the entry, and a later
    // invalidation revoking it once more costs one message, never safety.
    return inv !== undefined && inv.revokeId === revokeId && inv.waiting.delete(holder);
  }

  /** Holders that neither acknowledged nor ran out: send them LEASE_REVOKE again. */
  unacked(name: string): string[] {
    const inv = this.pending.get(name);
    if (!inv) return [];
    const now = this.now();
    for (const [holder, expiresAt] of inv.waiting) if (expiresAt <= now) inv.waiting.delete(holder);
    return [...inv.waiting.keys()];
  }

  /**
   * True when the invalidation may be answered: every revoked lease is
   * acknowledged or over, and no lease granted by a predecessor can be alive.
   */
  isComplete(name: string): boolean {
    const inv = this.pending.get(name);
    if (!inv || inv.resolvedAt === null) return false;
    if (this.unacked(name).length > 0) return false;
    if (this.isSettled(name)) return true;
    // Every lease on the old version derives from an origin read sent before the
    // write, hence before our re-resolve answered: gone (1 + ρ)·term later.
    return this.now() - inv.resolvedAt >= (1 + this.opts.driftRatio) * this.opts.termMs;
  }

  /** The invalidation was answered: the name may be invalidated again. */
  finish(name: string): void {
    this.pending.delete(name);
  }

  /** The versions of the leases outstanding on `name`. */
  versions(name: string): Set<string> {
    this.sweep(name);
    return new Set([...(this.leases.get(name)?.values() ?? [])].map((l) => l.version));
  }

  /** Holders with a lease outstanding on `name` (for status and tests). */
  holders(name: string): string[] {
    this.sweep(name);
    return [...(this.leases.get(name)?.keys() ?? [])];
  }

  get size(): number {
    return this.count;
  }

  /** Forgets every lease that ran out (called periodically, and when the table is full). */
  sweepAll(): void {
    for (const name of [...this.leases.keys()]) this.sweep(name);
  }

  private sweep(name: string): void {
    const byHolder = this.leases.get(name);
    if (!byHolder) return;
    const now = this.now();
    for (const [holder, lease] of byHolder) {
      if (lease.expiresAt <= now) {
        byHolder.delete(holder);
        this.count--;
      }
    }
    if (byHolder.size === 0) this.leases.delete(name);
  }
}
