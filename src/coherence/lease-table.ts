/**
 * Name → version bindings with a term: "container/key means version V until
 * T". A binding is reused without asking the origin until its term ends; then
 * it is revalidated with a conditional request (cheap: a 304 / unchanged
 * stat). Concurrent resolutions of one name share one origin request.
 *
 * This is the single-node core of the lease protocol (docs/coherence.md): the
 * home node grants these bindings to other holders; the table itself stays
 * the same. Time comes from an injectable monotonic clock (tests drive it).
 */
import { LRUCache } from 'lru-cache';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import { SingleFlight } from '../fill/single-flight.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName, ObjectVersion, Origin } from '../origin/origin.js';
import { Epochs } from './epochs.js';
import type { BindingSink, Resolver } from './resolver.js';

/**
 * Names (count) whose lease state one process tracks in each per-name table
 * (bindings at a home, leases at a holder, retired versions): LRU beyond it.
 * A name dropped from a table is simply resolved anew; at ~200 bytes a name
 * this bounds each table to tens of MiB.
 */
export const MAX_TRACKED_NAMES = 100_000;

export interface LeaseTableOptions {
  readonly origin: Origin;
  readonly termMs: number;
  /** Default MAX_TRACKED_NAMES. */
  readonly maxEntries?: number;
  readonly metrics?: Metrics;
  /** Monotonic milliseconds; defaults to performance.now(). */
  readonly now?: () => number;
  /** Publishes every binding installed here and takes it back when it is dropped (the native fast path). */
  readonly sink?: BindingSink | null;
}

export interface Binding {
  readonly info: ObjectInfo;
  /** When the term ends, on this table's clock: the origin request's send time + term. */
  readonly expiresAt: number;
}

export class LeaseTable implements Resolver {
  private readonly bindings: LRUCache<string, Binding>;
  private readonly flights = new SingleFlight<ObjectInfo>();
  /**
   * Per name, bumped by refresh(): an origin answer is installed only if no
   * refresh started since its request was sent, and a resolution never joins
   * an origin request older than the last refresh. So a revalidation sent
   * before an invalidation can never bring the old version back after it.
   */
  private readonly epochs: Epochs;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseTableOptions) {
    const max = opts.maxEntries ?? MAX_TRACKED_NAMES;
    this.bindings = new LRUCache({ max });
    this.epochs = new Epochs(max);
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * The version `name` means now. NOT_FOUND when the origin has no such object.
   * `expectEtag`: the caller pins this version (If-Match, a manifest); a
   * binding naming another one is revalidated at once rather than trusted
   * until its term ends, so a client that listed a new version at the origin
   * is not refused for up to a term. `minRemainingMs`: a binding with less
   * term left is revalidated first (a home granting leases wants a term worth granting).
   */
  async resolve(
    name: ObjectName,
    signal?: AbortSignal,
    expectEtag?: string,
    minRemainingMs = 0,
  ): Promise<ObjectInfo> {
    const id = formatName(name);
    const b = this.bindings.get(id);
    const contradicted = b !== undefined && expectEtag !== undefined && b.info.etag !== expectEtag;
    if (b && !contradicted && this.now() + minRemainingMs < b.expiresAt) {
      this.opts.metrics?.leaseResolutions.inc({ result: 'cached' });
      return b.info;
    }
    const since = this.epochs.now();
    const { promise } = this.flights.do(this.epochs.key(id), async () => {
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
        if (CacheError.is(err, 'NOT_FOUND') && this.epochs.unchangedSince(id, since)) this.drop(id, name);
        throw err;
      }
      // The term starts when we asked, not when the answer came: a slow origin
      // must not stretch how long a binding may be stale.
      if (this.epochs.unchangedSince(id, since)) this.install(id, info, start + this.opts.termMs);
      return info;
    });
    // The origin call is shared by everyone resolving this name and bounded by the
    // origin's own timeout; one caller going away must not fail the others.
    return abortable(promise, signal);
  }

  /**
   * Re-resolves `name` with an unconditional stat that no earlier request can
   * answer (an invalidation's step 2): the old binding is dropped now, origin
   * requests already in flight can no longer install theirs, and resolutions
   * from now on share this one. Null when the origin no longer has the object.
   */
  async refresh(name: ObjectName, signal?: AbortSignal): Promise<ObjectInfo | null> {
    const id = formatName(name);
    this.epochs.bump(id);
    this.drop(id, name);
    const since = this.epochs.now();
    const { promise } = this.flights.do(this.epochs.key(id), async () => {
      const start = this.now();
      const info = await this.originCall('stat', () => this.opts.origin.stat(name));
      this.opts.metrics?.leaseResolutions.inc({ result: 'refreshed' });
      if (this.epochs.unchangedSince(id, since)) this.install(id, info, start + this.opts.termMs);
      return info;
    });
    try {
      return await abortable(promise, signal);
    } catch (err) {
      if (CacheError.is(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }

  /**
   * Every name under `idPrefix` (`container/keyprefix`; '' for all) must be
   * resolved afresh: bindings are dropped and origin answers to requests sent
   * before now are not installed (a prefix invalidation, a membership change).
   */
  fence(idPrefix: string): void {
    this.epochs.fence(idPrefix);
    this.opts.sink?.unbindPrefix(idPrefix);
    for (const id of [...this.bindings.keys()]) if (id.startsWith(idPrefix)) this.bindings.delete(id);
  }

  /** The binding of `name` whether its term ended or not (what an invalidation replaces). */
  peek(name: ObjectName): Binding | undefined {
    return this.bindings.peek(formatName(name));
  }

  /** The binding in force for `name`, if any and not expired. */
  binding(name: ObjectName): Binding | undefined {
    const b = this.bindings.get(formatName(name));
    return b && this.now() < b.expiresAt ? b : undefined;
  }

  /** Names bound now (expired or not) whose `container/key` starts with `idPrefix`; at most `limit`. */
  boundNames(idPrefix: string, limit: number): string[] {
    const out: string[] = [];
    for (const id of this.bindings.keys()) {
      if (out.length >= limit) break;
      if (id.startsWith(idPrefix)) out.push(id);
    }
    return out;
  }

  /** Forgets the name's binding if it binds `vanished`'s version (gone at the origin mid-read). */
  forget(vanished: ObjectName & ObjectVersion): void {
    const id = formatName(vanished);
    const bound = this.bindings.get(id);
    if (bound && bound.info.etag !== vanished.etag) return;
    this.drop(id, { container: vanished.container, key: vanished.key });
  }

  /** Installs a binding here and publishes it (the sink's copy ends with the term). */
  private install(id: string, info: ObjectInfo, expiresAt: number): void {
    this.bindings.set(id, { info, expiresAt });
    this.opts.sink?.bind(info, expiresAt - this.now());
  }

  /** Drops a binding: the published copy first, so no reader outside JavaScript outlives it. */
  private drop(id: string, name: ObjectName): void {
    this.opts.sink?.unbind(name);
    this.bindings.delete(id);
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
