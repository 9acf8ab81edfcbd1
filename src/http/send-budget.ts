/**
 * A process-wide bound on the bytes HTTP responses hold (docs/http-api.md,
 * "Connections and limits"; the native door must match):
 *
 *   - before a response reads its body it reserves what its read can pin:
 *     min(chunks in the range, cache.readAhead + 1) × cache.chunkSize (the
 *     slice out with the socket and the read-ahead behind it: all a read
 *     holds, src/read/read-path.ts). Together the
 *     reservations stay within `maxBytes` (http.maxInFlightBytes); a response
 *     that does not fit waits at most `queueMs` (http.queueTimeout), then
 *     answers 503 OVERLOADED. Room that frees goes to the waiting response
 *     whose client address holds the least (first come first served among
 *     equals), so one address flooding the node cannot queue the others out;
 *   - a response whose client has accepted no byte for `slowAfterMs`
 *     (http.slowClientAfter: its socket buffer stayed full, the write waited
 *     for 'drain' all along) is "slow". Slow responses together may hold at
 *     most `maxSlowBytes` (http.maxSlowClientBytes); past it, the one that
 *     has been waiting longest is disconnected, as Redis does with
 *     maxmemory-clients. A reader that keeps up, even one held back by a
 *     saturated network, drains its buffer in milliseconds and never counts;
 *     clients that never read go first, and together they can never hold more
 *     than maxSlowBytes of maxBytes.
 */
import { Gauge } from 'prom-client';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';

export interface SendBudgetOptions {
  readonly maxBytes: number;
  readonly maxSlowBytes: number;
  readonly slowAfterMs: number;
  readonly queueMs: number;
  readonly metrics: Metrics;
}

interface Waiter {
  readonly bytes: number;
  /** The client address it is reserved for (fair share between addresses). */
  readonly owner: string;
  readonly grant: () => void;
}

export class Reservation {
  private released = false;
  /** Set while the client has not read for slowAfterMs; the position in SendBudget.slow is the waiting order. */
  slow = false;
  /** When its current wait for 'drain' began (performance.now()); undefined while it is not waiting. */
  stalledAt: number | undefined;

  constructor(
    private readonly budget: SendBudget,
    readonly bytes: number,
    readonly owner: string,
    /** Disconnects the client (the budget's only lever on a slow one). */
    readonly evict: () => void,
  ) {}

  /** The client stopped reading: the write waits for 'drain'. */
  stalled(): void {
    if (!this.released) this.budget.stalled(this);
  }

  /** The client read again. */
  resumed(): void {
    this.budget.resumed(this);
  }

  /** The response is over (sent or aborted); idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.resumed(this);
    this.budget.release(this);
  }
}

export class SendBudget {
  private used = 0;
  private readonly usedBy = new Map<string, number>();
  private slowBytes = 0;
  private readonly waiters: Waiter[] = [];
  /** Slow reservations in the order they stalled. */
  private readonly slow = new Set<Reservation>();
  /** Reservations whose write waits for 'drain' and is not slow yet, in the order the waits began. */
  private readonly stalling = new Set<Reservation>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly inFlight: Gauge;
  private readonly slowGauge: Gauge;

  constructor(private readonly o: SendBudgetOptions) {
    const r = o.metrics.registry;
    this.inFlight =
      (r.getSingleMetric('weightcache_http_inflight_bytes') as Gauge | undefined) ??
      new Gauge({
        name: 'weightcache_http_inflight_bytes',
        help: 'Bytes reserved by HTTP responses being sent (read-ahead windows and socket buffers), bounded by http.maxInFlightBytes',
        registers: [r],
      });
    this.slowGauge =
      (r.getSingleMetric('weightcache_http_slow_client_bytes') as Gauge | undefined) ??
      new Gauge({
        name: 'weightcache_http_slow_client_bytes',
        help: 'Of weightcache_http_inflight_bytes, what responses whose client stopped reading hold, bounded by http.maxSlowClientBytes',
        registers: [r],
      });
  }

  /**
   * Reserves `bytes` (at most maxBytes) for one response. Waits its turn;
   * rejects with OVERLOADED after queueMs, or with the signal's reason.
   */
  acquire(bytes: number, owner: string, signal: AbortSignal, evict: () => void): Promise<Reservation> {
    const want = Math.min(bytes, this.o.maxBytes);
    if (this.waiters.length === 0 && this.used + want <= this.o.maxBytes) {
      this.take(want, owner);
      return Promise.resolve(new Reservation(this, want, owner, evict));
    }
    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        bytes: want,
        owner,
        grant: () => {
          cleanup();
          resolve(new Reservation(this, want, owner, evict));
        },
      };
      const drop = (err: unknown) => {
        cleanup();
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.grantWaiting(); // a big waiter leaving may let smaller ones behind it in
        reject(err);
      };
      const timer = setTimeout(
        () =>
          drop(
            new CacheError(
              'OVERLOADED',
              `responses hold http.maxInFlightBytes (${formatBytes(this.o.maxBytes)}); waited ${this.o.queueMs} ms for room`,
            ),
          ),
        this.o.queueMs,
      );
      const onAbort = () => drop(signal.reason);
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      if (signal.aborted) return drop(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * A write of `r` waits for 'drain'. No timer per wait (a hit waits once per
   * slice): one sweep, running only while some write waits, finds the waits
   * older than slowAfterMs.
   */
  stalled(r: Reservation): void {
    if (r.slow || r.stalledAt !== undefined) return;
    r.stalledAt = performance.now();
    this.stalling.add(r);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(5, this.o.slowAfterMs / 4));
      this.sweeper.unref();
    }
  }

  resumed(r: Reservation): void {
    r.stalledAt = undefined;
    this.stalling.delete(r);
    if (!r.slow) return;
    r.slow = false;
    this.slow.delete(r);
    this.slowBytes -= r.bytes;
    this.slowGauge.set(this.slowBytes);
  }

  private sweep(): void {
    const now = performance.now();
    // Insertion order is the order the waits began: stop at the first young one.
    for (const r of this.stalling) {
      if (now - r.stalledAt! < this.o.slowAfterMs) break;
      this.stalling.delete(r);
      this.markSlow(r);
    }
    if (this.stalling.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private markSlow(r: Reservation): void {
    r.slow = true;
    this.slow.add(r);
    this.slowBytes += r.bytes;
    while (this.slowBytes > this.o.maxSlowBytes) {
      const victim = this.slow.values().next().value!;
      this.resumed(victim);
      victim.evict();
    }
    this.slowGauge.set(this.slowBytes);
  }

  release(r: Reservation): void {
    this.used -= r.bytes;
    const left = (this.usedBy.get(r.owner) ?? 0) - r.bytes;
    if (left > 0) this.usedBy.set(r.owner, left);
    else this.usedBy.delete(r.owner);
    this.inFlight.set(this.used);
    this.grantWaiting();
  }

  private take(bytes: number, owner: string): void {
    this.used += bytes;
    this.usedBy.set(owner, (this.usedBy.get(owner) ?? 0) + bytes);
    this.inFlight.set(this.used);
  }

  /** Grants waiting reservations while they fit, the least-served address first. */
  private grantWaiting(): void {
    while (this.waiters.length > 0) {
      let best = 0;
      for (let i = 1; i < this.waiters.length; i++) {
        const held = this.usedBy.get(this.waiters[i]!.owner) ?? 0;
        if (held < (this.usedBy.get(this.waiters[best]!.owner) ?? 0)) best = i;
      }
      const w = this.waiters[best]!;
      if (this.used + w.bytes > this.o.maxBytes) return;
      this.waiters.splice(best, 1);
      this.take(w.bytes, w.owner);
      w.grant();
    }
  }
}
