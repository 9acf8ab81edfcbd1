/**
 * The holder side of the lease protocol (docs/coherence.md, "The lease"): every
 * node and sidecar resolves a name through a lease from the name's home, uses
 * it while `now − sentAt < term − margin` on its own monotonic clock (sentAt
 * taken before the request is sent), renews at ~¾ of the term in the
 * background, and drops it — abandoning any request in flight for the name —
 * when the home revokes it. Names this process is home of resolve through its
 * own LeaseTable (the home is a holder of its own binding).
 *
 * When the home cannot give a lease (unreachable, not home in its own view,
 * refusing), the holder resolves at the origin for that one read and caches
 * nothing: the origin cannot be stale.
 */
import { LRUCache } from 'lru-cache';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import { FreshFlight } from '../fill/fresh-flight.js';
import { SingleFlight } from '../fill/single-flight.js';
import type { Logger } from '../log/logger.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName, ObjectVersion, Origin } from '../origin/origin.js';
import { RemoteError } from '../transport/messages.js';
import type { RequestChannel } from '../transport/rpc.js';
import { Epochs } from './epochs.js';
import { LEASE_RELEASE, type LeaseGrantResponse, type LeaseRevoke } from './lease-messages.js';
import { type LeaseTable, MAX_TRACKED_NAMES } from './lease-table.js';
import type { CoherenceMetrics } from './metrics.js';
import type { BindingSink, Resolver } from './resolver.js';
import { requestInvalidate, requestLease, requestLeaseAck } from './wire.js';

export interface LeaseHolderOptions {
  /** This process's own bindings: names it is home of. */
  readonly table: LeaseTable;
  /** The transport address of the name's home, or null when this process is the home. */
  readonly homeOf: (name: ObjectName) => string | null;
  /** The connection (pool) to a member; LEASE_REVOKE comes back on it (serveHolder in wire.ts). */
  readonly client: (address: string) => RequestChannel;
  /** False while a peer is in backoff after failures: its names resolve at the origin meanwhile. */
  readonly available: (address: string) => boolean;
  /** A peer could not be reached (a failed connection, a timeout). */
  readonly failed: (address: string) => void;
  /** For the no-lease fallback: one stat, nothing cached. */
  readonly origin: Origin;
  /** False (a sidecar with sidecar.originFallback off): no lease means the read fails, never an origin stat. */
  readonly originFallback: boolean;
  /** INVALIDATE's own timeout, for the invalidation a holder asks for when a read found its version gone. */
  readonly invalidateTimeoutMs: number;
  readonly marginMs: number;
  readonly metrics: CoherenceMetrics;
  readonly log: Logger;
  /** Default MAX_TRACKED_NAMES. */
  readonly maxEntries?: number;
  readonly now?: () => number;
  /**
   * Publishes each lease in use (the native fast path) for as long as it may
   * be used, and takes it back before a revoke is acknowledged.
   */
  readonly sink?: BindingSink | null;
}

interface HeldLease {
  readonly info: ObjectInfo;
  /** On our clock, just before the request was sent. */
  readonly sentAt: number;
  readonly termMs: number;
  /** The home that granted it: a lease from a member that is no longer the home is not used. */
  readonly home: string;
  readonly homeIncarnation: number;
}

/** A lease request's outcome: a version, or no lease (the caller asks the origin itself). */
type Acquired =
  | ObjectInfo
  | { readonly fallback: string; readonly err?: unknown }
  | { readonly notFound: true };

/** Leases released at shutdown, at most (the rest run out on their own). */
const MAX_RELEASES = 10_000;
/** Invalidations asked of homes after VERSION_CHANGED, in flight at once. */
const MAX_BACKGROUND_INVALIDATIONS = 16;
/** Requests for one resolution before giving up on leases and asking the origin. */
const MAX_ATTEMPTS = 3;

export class LeaseHolder implements Resolver {
  private readonly leases: LRUCache<string, HeldLease>;
  /** Bumped by every LEASE_REVOKE: a lease request in flight across one is abandoned. */
  private readonly epochs: Epochs;
  private readonly flights = new SingleFlight<Acquired>();
  private readonly fallbacks = new FreshFlight<ObjectInfo>();
  private readonly renewing = new Set<string>();
  /** When the last LEASE_REVOKE per name arrived, on our clock: no lease in use may predate it. */
  private readonly revokedAt: LRUCache<string, number>;
  private readonly invalidating = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly o: LeaseHolderOptions) {
    const max = o.maxEntries ?? MAX_TRACKED_NAMES;
    this.leases = new LRUCache({ max });
    this.epochs = new Epochs(max);
    this.revokedAt = new LRUCache({ max });
    this.now = o.now ?? (() => performance.now());
  }

  async resolve(
    name: ObjectName,
    signal?: AbortSignal,
    expectEtag?: string,
    minRemainingMs?: number,
  ): Promise<ObjectInfo> {
    const home = this.o.homeOf(name);
    if (home === null) return this.o.table.resolve(name, signal, expectEtag, minRemainingMs);
    const id = formatName(name);
    const l = this.leases.get(id);
    if (l && l.home === home) {
      const age = this.now() - l.sentAt;
      if (age < l.termMs - this.o.marginMs) {
        this.checkNotRevoked(id, l);
        if (age >= 0.75 * l.termMs - this.o.marginMs) this.renewAhead(name, id, home, l);
        return this.pinnedCheck(name, l.info, expectEtag, home);
      }
    }
    if (!this.o.available(home)) return this.fallback(name, 'unreachable', undefined, home);
    const { promise, shared } = this.flights.do(`${home}|${this.epochs.key(id)}`, () =>
      this.request(name, id, home),
    );
    let got = await abortable(promise, signal);
    // A "does not exist" answer to a request sent before this caller asked may predate an
    // invalidation answered since (the home records no lease on a missing name, so no revoke
    // comes): a caller that joined asks once more, itself.
    if (shared && 'notFound' in got) got = await abortable(this.request(name, id, home), signal);
    if ('notFound' in got) throw new CacheError('NOT_FOUND', `${id} does not exist at the origin`);
    // No lease: each caller asks the origin itself, after its own start — a stat shared
    // with a read that started later could return a version an invalidation has since replaced.
    if ('fallback' in got) return this.fallback(name, got.fallback, got.err, home);
    return this.pinnedCheck(name, got, expectEtag, home);
  }

  /**
   * A read found its version gone at the origin (VERSION_CHANGED). Our lease is
   * dropped, and the home is asked to invalidate the name in the background, so
   * that it re-resolves now instead of granting the vanished version until its
   * binding's term ends. A lease on another version (a newer one, or a peer
   * asked for an old one) is kept, and nothing is asked of the home.
   */
  forget(vanished: ObjectName & ObjectVersion): void {
    const name: ObjectName = { container: vanished.container, key: vanished.key };
    const id = formatName(name);
    const held = this.leases.get(id);
    if (held && held.info.etag !== vanished.etag) return;
    const home = this.o.homeOf(name);
    // A lease pushed out of `leases` may still be published until its term ends.
    if (held || home !== null) this.o.sink?.unbind(name);
    this.leases.delete(id);
    this.o.table.forget(vanished);
    if (home === null || this.invalidating.has(id) || this.invalidating.size >= MAX_BACKGROUND_INVALIDATIONS)
      return;
    this.invalidating.add(id);
    requestInvalidate(this.o.client(home), name, { timeoutMs: this.o.invalidateTimeoutMs })
      .catch((err: unknown) =>
        this.o.log.debug(
          { name: id, err: (err as Error).message },
          'invalidation after VERSION_CHANGED failed',
        ),
      )
      .finally(() => this.invalidating.delete(id));
  }

  /**
   * LEASE_REVOKE from a home on one of our connections to it: drop the lease,
   * abandon requests in flight for the name (the response, sent by serveHolder
   * in wire.ts, is the acknowledgement).
   */
  revoked(revoke: LeaseRevoke): void {
    const id = formatName(revoke);
    this.revokedAt.set(id, this.now());
    this.epochs.bump(id);
    // Before the acknowledgement (the response serveHolder sends when this returns): once the
    // native binding is gone, no I/O thread starts a read of the revoked version.
    this.o.sink?.unbind(revoke);
    this.leases.delete(id);
    this.o.metrics.revokesReceived.inc();
  }

  /**
   * At shutdown: tells each home this process holds nothing any more
   * (LEASE_ACK with revokeId 0), so an invalidation running or coming does not
   * wait this process's leases out. Best effort, bounded by `timeoutMs`.
   */
  async releaseAll(timeoutMs: number): Promise<void> {
    const sends: Promise<unknown>[] = [];
    for (const [id, l] of this.leases.entries()) {
      if (sends.length >= MAX_RELEASES) break;
      const slash = id.indexOf('/');
      const ack = {
        container: id.slice(0, slash),
        key: id.slice(slash + 1),
        homeIncarnation: l.homeIncarnation,
      };
      sends.push(requestLeaseAck(this.o.client(l.home), { ...ack, revokeId: LEASE_RELEASE }).catch(() => {}));
    }
    this.leases.clear();
    this.o.sink?.unbindPrefix('');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(sends),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Leases held now (status and tests). */
  get size(): number {
    return this.leases.size;
  }

  /**
   * The invariant the revoke handling keeps: every lease in use was requested
   * after the last revocation of its name (older requests are abandoned). A lease
   * that breaks it would serve a version a home has revoked: a stale read.
   */
  private checkNotRevoked(id: string, l: HeldLease): void {
    const at = this.revokedAt.get(id);
    if (at === undefined || l.sentAt >= at) return;
    this.o.metrics.staleReads.inc();
    this.o.log.error({ name: id, version: l.info.etag }, 'stale read: resolved from a lease revoked since');
  }

  /**
   * The same invariant for a binding the native fast path answered from (it never
   * passes checkNotRevoked): bound before the name's last revoke and used after it.
   */
  checkServed(id: string, etag: string, boundAt: number, usedAt: number): void {
    const at = this.revokedAt.get(id);
    if (at === undefined || boundAt >= at || usedAt <= at) return;
    this.o.metrics.staleReads.inc();
    this.o.log.error(
      { name: id, version: etag, path: 'native' },
      'stale read: a fast path used a binding revoked since',
    );
  }

  /**
   * A pinned read (If-Match, ?version=, a manifest) names its version; when the
   * lease names another, the read bypasses the lease and asks the origin (the
   * lease may lag an upload the client already saw). Nothing is cached.
   */
  private async pinnedCheck(
    name: ObjectName,
    info: ObjectInfo,
    expectEtag: string | undefined,
    home: string,
  ): Promise<ObjectInfo> {
    if (expectEtag === undefined || info.etag === expectEtag || !this.o.originFallback) return info;
    return this.fallback(name, 'pinned', undefined, home);
  }

  private renewAhead(name: ObjectName, id: string, home: string, held: HeldLease): void {
    if (this.renewing.has(id)) return;
    this.renewing.add(id);
    void this.ask(name, id, home, held)
      .catch(() => {}) // the lease in hand stays valid; the next resolution asks again
      .finally(() => this.renewing.delete(id));
  }

  private async request(name: ObjectName, id: string, home: string): Promise<Acquired> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let got: ObjectInfo | 'abandoned';
      try {
        got = await this.ask(name, id, home, undefined);
      } catch (err) {
        if (CacheError.is(err, 'NOT_FOUND') && !(err instanceof RemoteError)) return { notFound: true };
        if (err instanceof RemoteError) return { fallback: 'refused', err };
        this.o.failed(home);
        return { fallback: 'unreachable', err };
      }
      if (got !== 'abandoned') return got;
    }
    return { fallback: 'revoked' };
  }

  /**
   * One LEASE_GRANT (or LEASE_RENEW when `held`). Installs the lease unless a
   * revoke arrived meanwhile ('abandoned'). NOT_FOUND (a plain CacheError) when
   * the home says the origin has no such object.
   */
  private async ask(
    name: ObjectName,
    id: string,
    home: string,
    held: HeldLease | undefined,
  ): Promise<ObjectInfo | 'abandoned'> {
    const since = this.epochs.now();
    const sentAt = this.now();
    const version = held
      ? { etag: held.info.etag, size: held.info.size, lastModifiedMs: held.info.lastModified.getTime() }
      : undefined;
    const a: LeaseGrantResponse = await requestLease(this.o.client(home), name, version);
    // Revoked while in flight (the grant may predate the revoke), or so late that the lease
    // is over on our clock: not a lease; ask again.
    if (!this.epochs.unchangedSince(id, since)) return 'abandoned';
    if (a.status === 'ok' && this.now() - sentAt >= a.termMs - this.o.marginMs) return 'abandoned';
    switch (a.status) {
      case 'ok': {
        const info: ObjectInfo = {
          container: name.container,
          key: name.key,
          etag: a.version.etag,
          size: a.version.size,
          lastModified: new Date(a.version.lastModifiedMs),
          // The home's origin info, as a door answers it (Azure's Content-MD5); absent from an older home.
          ...(a.contentMd5 ? { contentMd5: a.contentMd5 } : {}),
        };
        // Reuse the same object while the version is unchanged (callers compare by identity).
        const prev = this.leases.get(id);
        const same = prev && prev.info.etag === info.etag && prev.info.size === info.size ? prev.info : info;
        // Answers on pooled connections may arrive out of order: a lease never replaces a newer one.
        if (!prev || sentAt > prev.sentAt) {
          this.leases.set(id, {
            info: same,
            sentAt,
            termMs: a.termMs,
            home,
            homeIncarnation: a.homeIncarnation,
          });
          // Usable while now − sentAt < term − margin (resolve()), so published for that long.
          this.o.sink?.bind(same, sentAt + a.termMs - this.o.marginMs - this.now());
        }
        return same;
      }
      case 'notFound':
        if ((this.leases.get(id)?.sentAt ?? Number.NEGATIVE_INFINITY) < sentAt) {
          this.o.sink?.unbind(name);
          this.leases.delete(id);
        }
        throw new CacheError('NOT_FOUND', `${id} does not exist at the origin`);
      default:
        throw new RemoteError('PEER_UNAVAILABLE', `${home} is not the home of ${id} in its view`);
    }
  }

  private async fallback(name: ObjectName, reason: string, err: unknown, home: string): Promise<ObjectInfo> {
    if (!this.o.originFallback) {
      throw new CacheError(
        'PEER_UNAVAILABLE',
        `no lease on ${formatName(name)} from its home ${home} (${reason}${err instanceof Error ? `: ${err.message}` : ''}), and origin fallback is off`,
      );
    }
    this.o.metrics.holderFallbacks.inc({ reason });
    this.o.log.debug(
      { name: formatName(name), reason, err: err instanceof Error ? err.message : undefined },
      'no lease; resolving at the origin for this read',
    );
    // Shared only with callers that asked before the stat was sent (FreshFlight): bounded
    // origin load when many reads go without leases (after a membership change), never an old answer.
    return this.fallbacks.do(formatName(name), () => this.o.origin.stat(name));
  }
}
