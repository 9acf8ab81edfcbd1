/**
 * Name → version bindings with a term: "container/key means version V until
 * T". A binding is reused without asking the origin until its term ends; then
 * it is revalidated with a conditional request (cheap: a 304 / unchanged
 * stat). Concurrent resolutions of one name share one origin request.
 *
 * This is the single-node core of the lease protocol in DESIGN.md: later the
 * home node grants these bindings to other holders; the table itself stays
 * the same. Time comes from an injectable monotonic clock (tests drive it).
 */
import { LRUCache } from 'lru-cache';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import { SingleFlight } from '../fill/single-flight.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ObjectInfo, ObjectName, Origin } from '../origin/origin.js';

export interface LeaseTableOptions {
  readonly origin: Origin;
  readonly termMs: number;
  readonly maxEntries?: number;
  readonly metrics?: Metrics;
  /** Monotonic milliseconds; defaults to performance.now(). */
  readonly now?: () => number;
}

interface Binding {
  readonly info: ObjectInfo;
  readonly expiresAt: number;
}

export class LeaseTable {
  private readonly bindings: LRUCache<string, Binding>;
  private readonly flights = new SingleFlight<ObjectInfo>();
  private readonly now: () => number;

  constructor(private readonly opts: LeaseTableOptions) {
    this.bindings = new LRUCache({ max: opts.maxEntries ?? 100_000 });
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * The version `name` means now. NOT_FOUND when the origin has no such object.
   * `expectEtag`: the caller pins this version (If-Match, a manifest); a
   * binding naming another one is revalidated at once rather than trusted
   * until its term ends, so a client that listed a new version at the origin
   * is not refused for up to a term.
   */
  async resolve(name: ObjectName, signal?: AbortSignal, expectEtag?: string): Promise<ObjectInfo> {
    const id = `${name.container}/${name.key}`;
    const b = this.bindings.get(id);
    const contradicted = b !== undefined && expectEtag !== undefined && b.info.etag !== expectEtag;
    if (b && !contradicted && this.now() < b.expiresAt) {
      this.opts.metrics?.leaseResolutions.inc({ result: 'cached' });
      return b.info;
    }
    const { promise } = this.flights.do(id, async () => {
      const start = this.now();
      let info: ObjectInfo;
      try {
        if (b) {
          info = await this.originCall('revalidate', () => this.opts.origin.revalidate(b.info));
          this.opts.metrics?.leaseResolutions.inc({
            result: info === b.info ? 'revalidated_same' : 'revalidated_changed',
          });
        } else {
          info = await this.originCall('stat', () => this.opts.origin.stat(name));
          this.opts.metrics?.leaseResolutions.inc({ result: 'resolved' });
        }
      } catch (err) {
        if (CacheError.is(err, 'NOT_FOUND')) this.bindings.delete(id);
        throw err;
      }
      // The term starts when we asked, not when the answer came: a slow origin
      // must not stretch how long a binding may be stale.
      this.bindings.set(id, { info, expiresAt: start + this.opts.termMs });
      return info;
    });
    // The origin call is shared by everyone resolving this name and bounded by the
    // origin's own timeout; one caller going away must not fail the others.
    return abortable(promise, signal);
  }

  /** Forgets a binding (the version vanished mid-read, or an invalidation). */
  forget(name: ObjectName): void {
    this.bindings.delete(`${name.container}/${name.key}`);
  }

  get size(): number {
    return this.bindings.size;
  }

  private async originCall<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const m = this.opts.metrics;
    const end = m?.originDuration.startTimer({ op });
    try {
      const v = await fn();
      m?.originRequests.inc({ op, result: 'ok' });
      return v;
    } catch (err) {
      m?.originRequests.inc({ op, result: CacheError.is(err) ? err.code.toLowerCase() : 'error' });
      throw err;
    } finally {
      end?.();
    }
  }
}
