/**
 * One process's part in the coherence protocol (docs/coherence.md), assembled
 * from config: the resolver the read path uses (leases from each name's home,
 * or the local table for names this process is home of), the home side served
 * on the transport, and `invalidate`, the one function every entry point calls.
 *
 * An invalidation of a name goes to its home (here, or over the transport);
 * a prefix goes to every member. The answer comes when the home(s) completed.
 */
import { LRUCache } from 'lru-cache';
import type { Cluster } from '../cluster/cluster.js';
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import { Limiter } from '../fill/limiter.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName, Origin } from '../origin/origin.js';
import { homeOf } from '../placement/ownership.js';
import { RemoteError } from '../transport/messages.js';
import type { Messages } from '../transport/rpc.js';
import { LeaseHolder } from './holder.js';
import { LeaseHome } from './home.js';
import { HomeLeases } from './home-leases.js';
import type { InvalidateAnswer } from './invalidate-messages.js';
import {
  type Invalidate,
  type InvalidationResult,
  type InvalidationSource,
  type InvalidationTarget,
  isPrefixTarget,
} from './invalidation.js';
import { type LeaseTable, MAX_TRACKED_NAMES } from './lease-table.js';
import { CoherenceMetrics } from './metrics.js';
import type { BindingSink, Resolver } from './resolver.js';
import { requestInvalidate, serveHolder, serveHome } from './wire.js';

const MAX_FORWARDS_PER_MEMBER = 32;
const MAX_FORWARDS_QUEUED = 10_000;
/** Member addresses (count) with a forwarding limiter past which idle limiters are dropped (pod IPs churn). */
const FORWARD_LIMITERS_SWEEP_AT = 1024;

export interface CoherenceOptions {
  readonly config: Pick<Config, 'leases' | 'origin' | 'transport'> & {
    cluster: Pick<Config['cluster'], 'members' | 'peerTimeout'>;
  };
  readonly role: 'node' | 'sidecar';
  /** A holder without a lease may stat the origin (false: sidecar.originFallback off). */
  readonly originFallback: boolean;
  readonly table: LeaseTable;
  readonly origin: Origin;
  readonly cluster: Cluster | null;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Where leases in use are published (the native door's fast path); the table has its own. */
  readonly sink?: BindingSink | null;
}

/** The timing constants of docs/coherence.md, derived from config. */
export function leaseTiming(leases: Config['leases'], members: Config['cluster']['members']) {
  const termMs = leases.term;
  const marginMs = leases.margin;
  // The margin is what tolerates drift: (1 + ρ)(T − m) ≤ T  ⇔  ρ ≤ m / (T − m).
  const driftRatio = marginMs / (termMs - marginMs);
  const lagMs = leases.membershipLag ?? (members && 'dns' in members ? members.dns.interval + 5_000 : 0);
  return { termMs, marginMs, driftRatio, lagMs, settleMs: (1 + driftRatio) * termMs + lagMs };
}

export class Coherence {
  readonly resolver: Resolver;
  /** The home side (LeaseService on the transport); null for a sidecar. */
  readonly home: LeaseHome | null;
  readonly holder: LeaseHolder | null;
  readonly metrics: CoherenceMetrics;
  /** Per name, the versions invalidations at this home retired, and when: no resolution starting later may return one. */
  private readonly retired = new LRUCache<string, ReadonlyMap<string, number>>({
    max: MAX_TRACKED_NAMES,
  });
  private readonly timing: ReturnType<typeof leaseTiming>;
  private readonly unsubscribe: () => void;
  /**
   * INVALIDATEs this process forwards at once, per member. They can wait up to a term, and each
   * holds one of the pooled connections' in-flight slots (256 each) that chunk reads and lease
   * requests to that member need too.
   */
  private readonly forwards = new Map<string, Limiter>();
  /**
   * Told of every invalidation this process takes part in without having asked
   * for it: a LEASE_REVOKE it acknowledges, an INVALIDATE another member sent
   * its home (the mount flips its names on both).
   */
  private readonly listeners = new Set<(target: InvalidationTarget) => void>();

  constructor(private readonly o: CoherenceOptions) {
    this.timing = leaseTiming(o.config.leases, o.config.cluster.members);
    const homeLeases = new HomeLeases({
      termMs: this.timing.termMs,
      driftRatio: this.timing.driftRatio,
      settleMs: this.timing.settleMs,
      // Without a transport listener nobody can hold a lease from this node, in this life or a past one.
      settledAtStart: o.role === 'node' && o.config.transport === null,
    });
    this.metrics = new CoherenceMetrics(o.metrics, () => homeLeases.size);
    const cluster = o.cluster;
    this.home =
      o.role === 'node'
        ? new LeaseHome({
            table: o.table,
            leases: homeLeases,
            termMs: this.timing.termMs,
            driftRatio: this.timing.driftRatio,
            isHome: (name) => this.homeAddress(name) === null,
            metrics: this.metrics,
            log: o.log.child({ part: 'lease-home' }),
            onAnswered: (name, info, retired) => this.noteRetired(formatName(name), info, retired),
            // Holders wait cluster.peerTimeout for an answer; refuse well before that.
            grantDeadlineMs: o.config.cluster.peerTimeout / 2,
          })
        : null;
    this.holder = cluster
      ? new LeaseHolder({
          table: o.table,
          homeOf: (name) => this.homeAddress(name),
          client: (address) => cluster.client(address),
          available: (address) => cluster.available(address),
          failed: (address) => cluster.failed(address),
          origin: o.origin,
          originFallback: o.originFallback,
          invalidateTimeoutMs: this.invalidateTimeoutMs(),
          marginMs: this.timing.marginMs,
          metrics: this.metrics,
          log: o.log.child({ part: 'lease-holder' }),
          sink: o.sink ?? null,
        })
      : null;
    // A home's LEASE_REVOKE comes back on this process's own connections to it.
    if (cluster && this.holder) {
      const holder = this.holder;
      serveHolder(cluster.messages, (r) => {
        holder.revoked(r);
        // Before the acknowledgement is sent: when the invalidation returns, listeners have seen it.
        this.tell({ container: r.container, key: r.key });
      });
    }
    // A new member list may make this process home of names it knows nothing of.
    // A new member list may make this process home of names it knows nothing of (settle), and of
    // names it was home of before (its old bindings may predate invalidations another home
    // answered meanwhile: fence them); while other processes may still see the old list, the old
    // home could answer invalidations for names homed here now: grant nothing meanwhile.
    const lagMs = this.timing.lagMs;
    const home = this.home;
    this.unsubscribe =
      cluster?.onMembershipChange(() => {
        homeLeases.becameHomeOfAll();
        o.table.fence('');
        home?.refuseGrantsFor(lagMs);
      }) ?? (() => {});
    if (cluster && lagMs > 0) home?.refuseGrantsFor(lagMs); // a process start is a membership change too
    const inner: Resolver = this.holder ?? o.table;
    this.resolver = {
      resolve: async (name, signal, expectEtag, minRemainingMs) => {
        const started = performance.now();
        return this.checked(await inner.resolve(name, signal, expectEtag, minRemainingMs), started);
      },
      forget: (vanished) => inner.forget(vanished),
    };
  }

  /** Every entry point's invalidation (see src/coherence/invalidation.ts for the contract). */
  readonly invalidate: Invalidate = async (target, source, signal) => {
    const done = this.metrics.invalidationDuration.startTimer();
    const start = performance.now();
    try {
      const a = isPrefixTarget(target) ? await this.prefix(target, signal) : await this.name(target, signal);
      const result: InvalidationResult = {
        container: target.container,
        ...(isPrefixTarget(target)
          ? { prefix: target.prefix }
          : { key: target.key, version: a.version ?? null }),
        names: a.names,
        acked: a.acked,
        expired: a.expired,
        durationMs: Math.round((performance.now() - start) * 1000) / 1000,
      };
      this.count(source, 'ok');
      done();
      return result;
    } catch (err) {
      this.count(source, 'error');
      throw err;
    }
  };

  /**
   * Calls `listener` with each invalidation this process learns of from
   * others (a lease revoked here, an INVALIDATE served by its home), before
   * it is acknowledged or answered; returns the unsubscribe. Invalidations
   * this process asks for itself go through `invalidate` instead.
   */
  onInvalidation(listener: (target: InvalidationTarget) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(target: InvalidationTarget): void {
    for (const l of this.listeners) l(target);
  }

  /** Serves the home's messages (leases, INVALIDATE) on a transport server's connections; a sidecar has none. */
  serveOn(messages: Messages): void {
    if (this.home) serveHome(messages, this.home, (t) => this.tell(t));
  }

  /** What /v1/status shows. */
  status(): Record<string, unknown> {
    return {
      termMs: this.timing.termMs,
      marginMs: this.timing.marginMs,
      homeIncarnation: this.home?.incarnation ?? null,
      leasesOutstanding: this.home?.outstanding ?? 0,
      leasesHeld: this.holder?.size ?? 0,
      settledInMs: this.home ? Math.max(0, Math.ceil(this.home.msUntilAllSettled())) : null,
    };
  }

  /** Stops; a holder first releases its leases at their homes (≤ 1 s), so no invalidation waits for it. */
  async close(): Promise<void> {
    this.unsubscribe();
    this.home?.close();
    await this.holder?.releaseAll(1000);
  }

  private async name(name: ObjectName, signal?: AbortSignal): Promise<InvalidateAnswer> {
    const home = this.homeAddress(name);
    if (home === null) {
      if (!this.home) throw new CacheError('INTERNAL', 'a sidecar is never a home');
      return this.home.invalidate(name, signal ?? new AbortController().signal);
    }
    return this.forward(home, name, signal);
  }

  private async prefix(
    target: Extract<InvalidationTarget, { prefix: string }>,
    signal?: AbortSignal,
  ): Promise<InvalidateAnswer> {
    const cluster = this.o.cluster;
    if (!cluster) return this.home!.invalidatePrefix(target.container, target.prefix, signal);
    // Every member handles the names it is home of; all must complete.
    const answers = await Promise.all(cluster.members().map((m) => this.forward(m.address, target, signal)));
    return answers.reduce((s, a) => ({
      names: s.names + a.names,
      acked: s.acked + a.acked,
      expired: s.expired + a.expired,
    }));
  }

  private async forward(
    address: string,
    target: InvalidationTarget,
    signal?: AbortSignal,
  ): Promise<InvalidateAnswer> {
    if (this.home && address === this.selfAddress()) {
      return isPrefixTarget(target)
        ? this.home.invalidatePrefix(target.container, target.prefix, signal)
        : this.home.invalidate(target, signal ?? new AbortController().signal);
    }
    try {
      // Bounded: INVALIDATEs wait long, and each holds an in-flight slot on a pooled connection
      // that revoke acknowledgements to this member's holders also need.
      return await this.forwardLimiter(address).run(() =>
        requestInvalidate(this.o.cluster!.client(address), target, {
          signal,
          timeoutMs: this.invalidateTimeoutMs(),
        }),
      );
    } catch (err) {
      if (signal?.aborted) throw err;
      const e = CacheError.from(err, 'PEER_UNAVAILABLE');
      const what = isPrefixTarget(target) ? `${target.container}/${target.prefix}*` : formatName(target);
      // The home answered that the origin failed: that answer stands. Otherwise the member could
      // not be reached or did not confirm: 503, retry (Event Grid does).
      const code = e instanceof RemoteError && e.code.startsWith('ORIGIN_') ? e.code : 'PEER_UNAVAILABLE';
      throw new CacheError(
        code,
        `invalidation of ${what} not confirmed by member ${address}: ${e.message}; retry`,
        { cause: e },
      );
    }
  }

  /**
   * An INVALIDATE completes within the home's own bounds: origin stat, then at most
   * (1 + ρ)·term waiting out leases or settling (twice for a prefix at an unsettled
   * home), plus slack.
   */
  private invalidateTimeoutMs(): number {
    const t = this.timing;
    return Math.ceil(this.o.config.origin.timeout + 2 * (1 + t.driftRatio) * t.termMs + t.settleMs + 5_000);
  }

  private forwardLimiter(address: string): Limiter {
    let l = this.forwards.get(address);
    if (!l) {
      l = new Limiter(MAX_FORWARDS_PER_MEMBER, MAX_FORWARDS_QUEUED, `invalidations forwarded to ${address}`);
      // Addresses come from the member list, which churns with pod IPs: drop idle limiters now and then.
      if (this.forwards.size >= FORWARD_LIMITERS_SWEEP_AT) {
        for (const [a, idle] of this.forwards)
          if (idle.running === 0 && idle.queued === 0) this.forwards.delete(a);
      }
      this.forwards.set(address, l);
    }
    return l;
  }

  /**
   * The transport address of a name's home in this process's view of the members, or null when
   * this process is it (a node outside any cluster is home of everything).
   */
  private homeAddress(name: ObjectName): string | null {
    const cluster = this.o.cluster;
    if (!cluster) return null;
    const home = homeOf(name, cluster.members());
    return home === cluster.selfAddress ? null : home;
  }

  private selfAddress(): string | null {
    return this.o.cluster?.selfAddress ?? null;
  }

  private count(source: InvalidationSource, result: 'ok' | 'error'): void {
    this.metrics.invalidations.inc({ source, result });
  }

  private noteRetired(id: string, info: ObjectInfo | null, retired: ReadonlySet<string>): void {
    const all = new Map(this.retired.get(id) ?? []);
    const now = performance.now();
    for (const etag of retired) if (!all.has(etag)) all.set(etag, now);
    if (info) all.delete(info.etag); // a version that came back at the origin is current again
    if (all.size > 0) this.retired.set(id, all);
    else this.retired.delete(id);
  }

  /**
   * The stale-read check for answers made on the native fast paths (which
   * never pass `checked`): a binding of `etag` used at `usedAt` (performance.now()
   * ms) is a stale read here when an invalidation answered here retired that
   * version before; and at a holder, when the binding dates from before a
   * revoke of its name and was used after it.
   */
  checkServed(s: { name: string; etag: string; boundAt: number; usedAt: number }): void {
    const at = this.retired.get(s.name)?.get(s.etag);
    if (at !== undefined && s.usedAt > at) {
      this.metrics.staleReads.inc();
      this.o.log.error(
        { name: s.name, version: s.etag, path: 'native' },
        'stale read: a fast path answered a version that an answered invalidation retired',
      );
    }
    this.holder?.checkServed(s.name, s.etag, s.boundAt, s.usedAt);
  }

  /**
   * A resolution, here, that started after an invalidation here retired the
   * version it returns is a stale read: counted, logged. (One that started
   * before may finish on the old version: it was in progress.)
   */
  private checked(info: ObjectInfo, started: number): ObjectInfo {
    const at = this.retired.get(formatName(info))?.get(info.etag);
    if (at !== undefined && started > at) {
      this.metrics.staleReads.inc();
      this.o.log.error(
        { name: formatName(info), version: info.etag },
        'stale read: resolved a version that an answered invalidation retired',
      );
    }
    return info;
  }
}
