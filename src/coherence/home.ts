/**
 * The home side of the lease protocol (docs/coherence.md): grants leases on
 * the names this member is home of, and runs invalidations — re-resolve at
 * the origin, LEASE_REVOKE to every holder, answer when each acknowledged or
 * ran out and the home is settled. HomeLeases keeps the state; this class does
 * the I/O around it. It also serves peers' INVALIDATE requests (LeaseService).
 */
import { randomInt } from 'node:crypto';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import { FreshFlight } from '../fill/fresh-flight.js';
import { forEachBounded } from '../fill/pool.js';
import type { Logger } from '../log/logger.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import type { HomeLeases } from './home-leases.js';
import type { InvalidateAnswer } from './invalidate-messages.js';
import { type InvalidationTarget, isPrefixTarget } from './invalidation.js';
import {
  encodeLeaseRevoke,
  LEASE_RELEASE,
  type LeaseAck,
  type LeaseGrantResponse,
  type LeaseVersion,
} from './lease-messages.js';
import type { LeaseTable } from './lease-table.js';
import type { CoherenceMetrics } from './metrics.js';
import { CoherenceFrame, type HolderConnection, type LeaseService } from './wire.js';

/** Names one prefix invalidation handles at most on one home. */
export const MAX_PREFIX_NAMES = 100_000;
/** Names of one prefix invalidated at once. */
const PREFIX_CONCURRENCY = 16;
/** How often a running invalidation looks at expiries and settling between acks. */
const CHECK_MS = 25;
/** Connections remembered per holder (its client pools a couple). */
const CONNS_PER_HOLDER = 4;
/** Holders whose revoke connection is remembered (LRU-ish: oldest forgotten first). */
const MAX_HOLDERS = 65_536;

export interface LeaseHomeOptions {
  /** The home's own bindings (name → version from the origin). */
  readonly table: LeaseTable;
  readonly leases: HomeLeases;
  readonly termMs: number;
  /** ρ, as HomeLeases has it. */
  readonly driftRatio: number;
  /** Is this process the name's home in its current view? (Always true outside a cluster.) */
  readonly isHome: (name: ObjectName) => boolean;
  readonly metrics: CoherenceMetrics;
  readonly log: Logger;
  /**
   * Called when an invalidation of a name completed: the version now bound
   * (null: deleted) and the versions it retired (bound or leased before it).
   */
  readonly onAnswered?: (name: ObjectName, info: ObjectInfo | null, retired: ReadonlySet<string>) => void;
  /** Bound on answering a LEASE_GRANT/RENEW: past it, refuse (the holder reads the origin) rather than time out. */
  readonly grantDeadlineMs?: number;
  /** LEASE_REVOKE is resent to holders that have not answered after this long (default 1 s). */
  readonly retransmitMs?: number;
  readonly now?: () => number;
}

export interface NameInvalidated {
  readonly info: ObjectInfo | null;
  readonly acked: number;
  readonly expired: number;
}

export class LeaseHome implements LeaseService {
  /** Random per process start, never 0: a restarted home never counts an ack meant for its previous life. */
  readonly incarnation = randomInt(1, 2 ** 48);
  /** Per holder, its connections that sent lease requests, most recent first (a few). */
  private readonly holders = new Map<string, HolderConnection[]>();
  /** Invalidation runs per name: one running, one follow-up for those arriving meanwhile. */
  private readonly runs = new FreshFlight<NameInvalidated>();
  /** Holders whose last LEASE_REVOKE failed, and when to try them again. */
  private readonly retryAt = new Map<string, number>();
  /** Grants are refused until then (a membership change may have made this home of names another member still serves). */
  private refuseGrantsUntil = 0;
  private readonly sweeper: NodeJS.Timeout;
  /** Settles when the running invalidation of a name has re-resolved it (grants wait for it). */
  private readonly resolving = new Map<string, Promise<void>>();
  /** Per name being invalidated: the holders that acknowledged its revocation, and how to wake its loop. */
  private readonly acks = new Map<string, { holders: Set<string>; wake: () => void }>();
  private readonly retransmitMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly o: LeaseHomeOptions) {
    this.retransmitMs = o.retransmitMs ?? 1000;
    this.now = o.now ?? (() => performance.now());
    // Leases run out on their own; forget them even for names nobody asks about again.
    this.sweeper = setInterval(() => o.leases.sweepAll(), o.termMs);
    this.sweeper.unref();
  }

  /**
   * The member list changed: for `lagMs` (as long as other processes may still
   * see the old list) grant nothing, so that no member still acting as home of a
   * name in the old view can answer an invalidation while leases granted here in
   * the new view are out. Holders read the origin meanwhile, caching nothing.
   */
  refuseGrantsFor(lagMs: number): void {
    this.refuseGrantsUntil = Math.max(this.refuseGrantsUntil, this.now() + lagMs);
  }

  async lease(
    name: ObjectName,
    holderId: string,
    held: LeaseVersion | undefined,
    signal: AbortSignal,
    conn: HolderConnection,
  ): Promise<LeaseGrantResponse> {
    const counter = held ? this.o.metrics.renewals : this.o.metrics.grants;
    const homeIncarnation = this.incarnation;
    if (!this.o.isHome(name)) {
      counter.inc({ result: 'not_home' });
      return { status: 'notHome', homeIncarnation };
    }
    this.remember(holderId, conn);
    const id = formatName(name);
    if (this.now() < this.refuseGrantsUntil) {
      counter.inc({ result: 'refused' });
      throw new CacheError('OVERLOADED', `no leases for a moment after a membership change; read the origin`);
    }
    // Answer (refuse) before the holder's own timeout would count this home as down.
    const deadline = this.o.grantDeadlineMs
      ? AbortSignal.any([signal, AbortSignal.timeout(this.o.grantDeadlineMs)])
      : signal;
    // A grant is issued only on the binding in force: an answer from an origin request that
    // an invalidation overtook is not installed, so it is never granted (3 tries, then refuse).
    for (let attempt = 0; attempt < 3; attempt++) {
      let info: ObjectInfo;
      try {
        await abortable(this.resolving.get(id) ?? Promise.resolve(), deadline);
        info = await this.o.table.resolve(name, deadline, undefined, this.o.termMs / 2);
      } catch (err) {
        if (CacheError.is(err, 'NOT_FOUND')) {
          counter.inc({ result: 'not_found' });
          return { status: 'notFound', homeIncarnation };
        }
        if (deadline.aborted && !signal.aborted) {
          counter.inc({ result: 'refused' });
          throw new CacheError('OVERLOADED', `resolving ${id} takes too long here; read the origin`);
        }
        throw err;
      }
      const b = this.o.table.binding(name);
      if (b?.info !== info) continue;
      const g = this.o.leases.grant(id, holderId, info.etag, b.expiresAt);
      if (g === 'wait') continue;
      const termMs = g ? Math.floor(g.termMs) : 0;
      if (termMs < 1) break;
      counter.inc({ result: 'ok' });
      const version = { etag: info.etag, size: info.size, lastModifiedMs: info.lastModified.getTime() };
      return { status: 'ok', version, termMs, homeIncarnation, contentMd5: info.contentMd5 ?? null };
    }
    counter.inc({ result: 'refused' });
    throw new CacheError(
      'OVERLOADED',
      `no lease on ${id} now (lease table full or name busy); read the origin`,
    );
  }

  ack(ack: LeaseAck, holderId: string): void {
    if (ack.homeIncarnation !== this.incarnation) return; // meant for a previous life of this home
    const id = formatName(ack);
    if (ack.revokeId !== LEASE_RELEASE) this.acknowledged(id, holderId, ack.revokeId);
    else if (this.o.leases.release(id, holderId)) this.counted(id, holderId);
  }

  /** A holder acknowledged revocation `revokeId` of `id` (answering LEASE_REVOKE, or by LEASE_ACK). */
  private acknowledged(id: string, holder: string, revokeId: number): void {
    if (!this.o.leases.ack(id, holder, revokeId)) return; // stale, duplicate, or for another revocation
    this.counted(id, holder);
  }

  private counted(id: string, holder: string): void {
    this.o.metrics.revocations.inc({ result: 'acked' });
    const run = this.acks.get(id);
    run?.holders.add(holder);
    run?.wake();
  }

  /** INVALIDATE from a peer: this member must be home (of the name; for a prefix, of the names it handles). */
  async invalidate(target: InvalidationTarget, signal: AbortSignal): Promise<InvalidateAnswer> {
    if (isPrefixTarget(target)) return this.invalidatePrefix(target.container, target.prefix, signal);
    if (!this.o.isHome(target)) {
      throw new CacheError(
        'PEER_UNAVAILABLE',
        `${formatName(target)}: this member is not its home in its view of the membership (views differ; retry)`,
      );
    }
    const r = await abortable(this.invalidateName(target), signal);
    // Membership changed meanwhile: another member may have granted leases as the new home.
    if (!this.o.isHome(target)) {
      throw new CacheError(
        'PEER_UNAVAILABLE',
        `${formatName(target)}: this member stopped being its home during the invalidation (membership changed; retry)`,
      );
    }
    return { version: r.info ? bound(r.info) : null, names: 1, acked: r.acked, expired: r.expired };
  }

  /**
   * Invalidates one name this process is home of (steps 1–4 of the protocol).
   * An invalidation arriving while one of the name runs may have arrived after
   * that run's re-resolve was sent, so it waits for one follow-up run, shared
   * by everything that arrives meanwhile, whose re-resolve follows them all.
   */
  invalidateName(name: ObjectName): Promise<NameInvalidated> {
    const id = formatName(name);
    return this.runs.do(id, () => this.run(name, id));
  }

  /**
   * A prefix: first a fence — every binding under it is dropped and no origin
   * answer to a request sent before now is installed, so every name under it is
   * resolved afresh, known here or not — then each name with leases out is
   * invalidated (re-resolve + revoke).
   */
  async invalidatePrefix(container: string, prefix: string, signal?: AbortSignal): Promise<InvalidateAnswer> {
    const idPrefix = `${container}/${prefix}`;
    this.o.table.fence(idPrefix);
    const ids = this.o.leases.names(idPrefix, MAX_PREFIX_NAMES + 1);
    if (ids.length > MAX_PREFIX_NAMES) {
      throw new CacheError(
        'TOO_LARGE',
        `more than ${MAX_PREFIX_NAMES} names under ${idPrefix} have leases out on this member; invalidate narrower prefixes`,
      );
    }
    const names = ids
      .map((id) => ({ container, key: id.slice(container.length + 1) }))
      .filter((n) => this.o.isHome(n));
    let acked = 0;
    let expired = 0;
    await abortable(
      forEachBounded(names, PREFIX_CONCURRENCY, async (n) => {
        const r = await this.invalidateName(n);
        acked += r.acked;
        expired += r.expired;
      }),
      signal,
    );
    // A predecessor may have granted leases on names under the prefix that this home has
    // never seen: they are gone once it settled, or (1 + ρ)·term from now at the latest.
    const wait = Math.min(this.o.leases.msUntilAllSettled(), (1 + this.o.driftRatio) * this.o.termMs);
    if (wait > 0) await abortable(sleep(wait), signal);
    return { names: names.length, acked, expired };
  }

  get outstanding(): number {
    return this.o.leases.size;
  }

  /** How long until this home vouches for every lease on every name (≤ 0: settled). */
  msUntilAllSettled(): number {
    return this.o.leases.msUntilAllSettled();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
  }

  private async run(name: ObjectName, id: string): Promise<NameInvalidated> {
    const retired = this.o.leases.versions(id);
    const { revokeId, holders } = this.o.leases.beginInvalidation(id);
    const before = this.o.table.peek(name)?.info.etag;
    if (before !== undefined) retired.add(before);
    let info: ObjectInfo | null;
    let resolvedNow!: () => void;
    this.resolving.set(id, new Promise<void>((r) => (resolvedNow = r)));
    try {
      info = await this.o.table.refresh(name); // step 2: no earlier origin answer can be installed now
      this.o.leases.resolved(id);
    } catch (err) {
      this.o.leases.finish(id); // nothing was revoked; the caller answers 5xx and is retried
      throw err;
    } finally {
      this.resolving.delete(id);
      resolvedNow();
    }
    if (info) retired.delete(info.etag);
    try {
      const acked = await this.revokeAll(name, id, revokeId);
      const expired = holders.length - acked;
      if (expired > 0) this.o.metrics.revocations.inc({ result: 'expired' }, expired);
      // Retired versions are recorded (for the stale-read check) only by a home that still is one:
      // after a membership change the new home may legitimately grant them for a while.
      if (this.o.isHome(name)) this.o.onAnswered?.(name, info, retired);
      return { info, acked, expired };
    } finally {
      this.o.leases.finish(id);
    }
  }

  /** Step 3 and 4: LEASE_REVOKE to each holder, resent until acked or expired; then wait to be settled. */
  private async revokeAll(name: ObjectName, id: string, revokeId: number): Promise<number> {
    const meta = encodeLeaseRevoke({ ...name, homeIncarnation: this.incarnation, revokeId });
    const inFlight = new Set<string>();
    const run = { holders: new Set<string>(), wake: () => {} };
    this.acks.set(id, run);
    try {
      return await this.revokeLoop(id, meta, revokeId, inFlight, run);
    } finally {
      this.acks.delete(id);
    }
  }

  private async revokeLoop(
    id: string,
    meta: Buffer,
    revokeId: number,
    inFlight: Set<string>,
    run: { holders: Set<string>; wake: () => void },
  ): Promise<number> {
    for (;;) {
      if (this.o.leases.isComplete(id)) return run.holders.size;
      if (this.closed) throw new CacheError('SHUTTING_DOWN', 'home shutting down during an invalidation');
      for (const holder of this.o.leases.unacked(id)) {
        if (inFlight.has(holder) || (this.retryAt.get(holder) ?? 0) > this.now()) continue;
        const conn = this.holders.get(holder)?.find((c) => c.isOpen);
        if (!conn?.isOpen) continue; // unreachable: its lease runs out (Gray & Cheriton)
        inFlight.add(holder);
        // On a live connection nothing is lost: wait as long as the lease could last (the revoke may
        // queue behind chunk payloads); resend only after a failure, and not sooner than retransmitMs.
        conn
          .request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: this.o.termMs + this.retransmitMs })
          .then(
            () => this.acknowledged(id, holder, revokeId),
            (err: unknown) => {
              this.retryAt.set(holder, this.now() + this.retransmitMs);
              if (this.retryAt.size > MAX_HOLDERS) this.retryAt.delete(this.retryAt.keys().next().value!);
              this.o.log.debug(
                { holder, name: id, err: (err as Error).message },
                'LEASE_REVOKE not answered',
              );
            },
          )
          .finally(() => inFlight.delete(holder));
      }
      // Woken by an ack; otherwise look again soon: leases run out and the home settles on the clock.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, CHECK_MS);
        run.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private remember(holderId: string, conn: HolderConnection): void {
    const known = this.holders.get(holderId);
    if (known?.[0] === conn) return;
    // Most recent first, open ones only, a few: a revoke goes on any that is still open.
    const conns = [conn, ...(known ?? []).filter((c) => c !== conn && c.isOpen)].slice(0, CONNS_PER_HOLDER);
    this.holders.delete(holderId); // re-insert: Map order is the eviction order
    this.holders.set(holderId, conns);
    if (this.holders.size > MAX_HOLDERS) this.holders.delete(this.holders.keys().next().value!);
  }
}

function bound(info: ObjectInfo) {
  return { etag: info.etag, size: info.size, lastModified: info.lastModified.toISOString() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
