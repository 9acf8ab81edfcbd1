/**
 * Who is in the cluster. Nodes and sidecars build the same list from the same
 * config, so rendezvous placement gives them the same owners:
 *
 * - static: `cluster.members.static`, hostnames resolved once at start (the
 *   transport dials IPs, and a member's address is its identity in the hash);
 * - dns: A and AAAA of `cluster.members.dns.name` every `interval` (a
 *   Kubernetes headless Service), each IP with `port`, weight 1.
 *
 * DNS is allowed to fail without shrinking the cluster: a failed or empty
 * answer keeps the last known list (a resolver hiccup must not make every
 * node think it owns everything and stampede the origin). Every change is
 * logged with the addresses and counted.
 */
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Member } from './rendezvous.js';

export type ClusterConfig = Config['cluster'];
export type ChangeListener = (now: readonly Member[], added: Member[], removed: Member[]) => void;

/** More members than this from DNS are cut (the same ones everywhere: lowest addresses kept). */
export const MAX_MEMBERS = 1024;
/** Per DNS query try; 2 tries. Bounds how long one refresh can take when a server is silent. */
const DNS_TIMEOUT_MS = 2000;
const HOST_PORT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export interface MembershipOptions {
  log: Logger;
  metrics?: Metrics;
}

export class Membership {
  #members: readonly Member[] = Object.freeze([]);
  readonly #listeners = new Set<ChangeListener>();
  readonly #log: Logger;
  readonly #metrics: MembershipMetrics | undefined;
  #timer: NodeJS.Timeout | undefined;
  #resolver: Resolver | undefined;
  #closed = false;
  // DNS: the last good answer per family, so a failure of one family (a
  // resolver that times out on AAAA) does not drop the other family's members.
  #lastV4: string[] = [];
  #lastV6: string[] = [];
  #failing = false;
  /** Logged once while DNS returns more than MAX_MEMBERS, not every refresh. */
  #cut = false;
  #started = false;
  #self: string | undefined;

  private constructor(opts: MembershipOptions) {
    this.#log = opts.log.child({ component: 'membership' });
    this.#metrics = opts.metrics ? membershipMetrics(opts.metrics.registry) : undefined;
  }

  /**
   * Builds the member list from config. Static: resolves hostnames, rejects
   * duplicates (CONFIG_INVALID). DNS: waits for the first resolution (an
   * empty list if it fails; later refreshes fill it) and keeps refreshing.
   * No `cluster.members`: no members (a single node; owner() is undefined).
   */
  static async start(cfg: ClusterConfig, opts: MembershipOptions): Promise<Membership> {
    const m = new Membership(opts);
    m.#self = await resolveSelf(cfg.self);
    const src = cfg.members;
    if (src === null) {
      m.#set([], 'none');
    } else if ('static' in src) {
      m.#set(await resolveStatic(src.static), 'static');
    } else {
      const { name, port, interval, servers } = src.dns;
      const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });
      if (servers) resolver.setServers(servers);
      m.#resolver = resolver;
      await m.#refresh(name, port);
      m.#schedule(name, port, interval);
    }
    if (m.#self !== undefined && src !== null && !m.#members.some((x) => x.address === m.#self)) {
      // Not fatal (DNS may not list this pod yet), but a node that is not in
      // its own list reads its own chunks from peers: worth a loud line.
      m.#log.warn({ self: m.#self }, 'membership: cluster.self is not among the members');
    }
    return m;
  }

  /**
   * This process's own member address: cluster.self resolved to "ip:port" the
   * same way static members are, so `usable(ranked, health, membership.self)`
   * recognises it. Undefined without cluster.self (a sidecar).
   */
  get self(): string | undefined {
    return this.#self;
  }

  /** The current members, sorted by address; a frozen snapshot that later changes do not alter. */
  members(): readonly Member[] {
    return this.#members;
  }

  /** Calls `fn` after every change to the list (not for the initial list); returns the unsubscribe function. */
  onChange(fn: ChangeListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stops refreshing; the last list stays readable. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#resolver?.cancel();
    this.#listeners.clear();
  }

  #schedule(name: string, port: number, intervalMs: number): void {
    if (this.#closed) return;
    // One refresh at a time: the next is scheduled after this one ends, so a
    // slow resolver cannot pile up queries. unref: refreshing alone does not
    // keep a process alive.
    this.#timer = setTimeout(async () => {
      try {
        await this.#refresh(name, port);
      } catch (err) {
        // Not expected (query errors are answers), but the refresh loop must outlive any bug.
        this.#log.error({ err }, 'DNS membership: refresh failed');
      }
      this.#schedule(name, port, intervalMs);
    }, intervalMs);
    this.#timer.unref();
  }

  async #refresh(name: string, port: number): Promise<void> {
    const resolver = this.#resolver!;
    const [v4, v6] = await Promise.all([
      family(() => resolver.resolve4(name)),
      family(() => resolver.resolve6(name)),
    ]);
    if (this.#closed) return;
    this.#metrics?.resolutions.inc({ result: v4.ok || v6.ok ? 'ok' : 'error' });
    if ((!v4.ok && !v6.ok) || (v4.ips.length === 0 && v6.ips.length === 0)) {
      if (!this.#failing) {
        this.#log.warn(
          { name, a: v4.error ?? 'no records', aaaa: v6.error ?? 'no records', kept: this.#members.length },
          'DNS membership: resolution failed or empty; keeping the last known members',
        );
      }
      this.#failing = true;
      this.#metrics?.dnsFailures.inc();
      return;
    }
    if (this.#failing) this.#log.info({ name }, 'DNS membership: resolution works again');
    this.#failing = false;
    // Only an answer that is used updates the per-family memory.
    if (v4.ok) this.#lastV4 = v4.ips;
    if (v6.ok) this.#lastV6 = v6.ips;
    let members = [...this.#lastV4, ...this.#lastV6].map((ip) => ({
      address: formatAddress(ip, port),
      weight: 1,
    }));
    members = dedupe(members).sort(byAddress);
    const over = members.length > MAX_MEMBERS;
    if (over && !this.#cut) {
      this.#log.warn(
        { name, got: members.length, max: MAX_MEMBERS },
        'DNS membership: too many members; cut',
      );
    }
    this.#cut = over;
    if (over) members = members.slice(0, MAX_MEMBERS);
    this.#set(members, 'dns');
  }

  #set(next: Member[], source: 'none' | 'static' | 'dns'): void {
    const sorted = Object.freeze([...next].sort(byAddress).map((m) => Object.freeze({ ...m })));
    const before = new Map(this.#members.map((m) => [m.address, m]));
    const after = new Map(sorted.map((m) => [m.address, m]));
    // A weight change counts as remove + add: placement of that member's keys changes.
    const added = sorted.filter((m) => before.get(m.address)?.weight !== m.weight);
    const removed = this.#members.filter((m) => after.get(m.address)?.weight !== m.weight);
    if (added.length === 0 && removed.length === 0 && this.#started) return;
    this.#members = sorted;
    this.#metrics?.members.set(sorted.length);
    if (!this.#started) {
      this.#started = true;
      this.#log.info({ source, members: sorted.map((m) => m.address) }, 'membership: initial members');
      return;
    }
    const addr = (ms: Member[]) => ms.map((m) => m.address);
    this.#log.info(
      { added: addr(added), removed: addr(removed), members: sorted.length },
      'membership: members changed',
    );
    this.#metrics?.changes.inc({ change: 'added' }, added.length);
    this.#metrics?.changes.inc({ change: 'removed' }, removed.length);
    for (const fn of this.#listeners) {
      try {
        fn(sorted, added, removed);
      } catch (err) {
        // One broken listener must not stop the others from hearing about the change.
        this.#log.error({ err }, 'membership: change listener threw');
      }
    }
  }
}

type FamilyResult = { ok: true; ips: string[]; error?: undefined } | { ok: false; ips: []; error: string };

/** One record type: ENODATA ("the name exists, no records of this type") is an empty answer, not a failure. */
async function family(query: () => Promise<string[]>): Promise<FamilyResult> {
  try {
    return { ok: true, ips: await query() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (code === 'ENODATA') return { ok: true, ips: [] };
    return { ok: false, ips: [], error: code };
  }
}

async function resolveStatic(entries: ReadonlyArray<{ address: string; weight: number }>): Promise<Member[]> {
  const out = await Promise.all(
    entries.map(async ({ address, weight }) => {
      const m = HOST_PORT_RE.exec(address);
      if (!m) throw invalid(`${JSON.stringify(address)} is not "host:port"`);
      const host = m[1]!.replace(/^\[|\]$/g, '');
      const port = Number(m[2]);
      if (!(weight > 0) || !Number.isFinite(weight)) throw invalid(`${address}: weight must be > 0`);
      return { configured: address, address: formatAddress(await resolveHost(host), port), weight };
    }),
  );
  const seen = new Map<string, string>();
  for (const m of out) {
    const other = seen.get(m.address);
    if (other !== undefined) {
      throw invalid(
        `${JSON.stringify(other)} and ${JSON.stringify(m.configured)} are the same member (${m.address})`,
      );
    }
    seen.set(m.address, m.configured);
  }
  return out.map(({ address, weight }) => ({ address, weight }));
}

/**
 * A hostname's address, picked the same way in every process: IPv4 before
 * IPv6, then the lowest. (A name with several addresses is still one member;
 * processes whose resolvers disagree would disagree on owners, so IPs or
 * names with one stable address are what to put in a static list.)
 */
async function resolveHost(host: string, key = 'cluster.members.static'): Promise<string> {
  if (isIP(host)) return host;
  let found: Array<{ address: string; family: number }>;
  try {
    found = await lookup(host, { all: true });
  } catch (err) {
    throw invalid(
      `cannot resolve ${JSON.stringify(host)}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      key,
    );
  }
  found.sort((a, b) => a.family - b.family || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  if (!found[0]) throw invalid(`${JSON.stringify(host)} resolves to no address`, key);
  return found[0].address;
}

function invalid(message: string, key = 'cluster.members.static'): CacheError {
  return new CacheError('CONFIG_INVALID', `${key}: ${message}`);
}

/** cluster.self as a member address ("ip:port"), resolved like a static member so the two compare equal. */
async function resolveSelf(self: string | null): Promise<string | undefined> {
  if (self === null) return undefined;
  const m = HOST_PORT_RE.exec(self);
  if (!m) throw invalid(`${JSON.stringify(self)} is not "host:port"`, 'cluster.self');
  const host = m[1]!.replace(/^\[|\]$/g, '');
  return formatAddress(await resolveHost(host, 'cluster.self'), Number(m[2]));
}

function formatAddress(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function dedupe(ms: Member[]): Member[] {
  return [...new Map(ms.map((m) => [m.address, m])).values()];
}

function byAddress(a: Member, b: Member): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

interface MembershipMetrics {
  members: Gauge;
  changes: Counter<'change'>;
  resolutions: Counter<'result'>;
  dnsFailures: Counter;
}

/** Registered on the process part's registry; reused if another Membership already registered them. */
function membershipMetrics(registry: Registry): MembershipMetrics {
  const get = <T>(name: string, make: () => T): T =>
    (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    members: get(
      'weightcache_members',
      () =>
        new Gauge({ name: 'weightcache_members', help: 'Cluster members known now', registers: [registry] }),
    ),
    changes: get(
      'weightcache_membership_changes_total',
      () =>
        new Counter({
          name: 'weightcache_membership_changes_total',
          help: 'Members added to or removed from the cluster after start (a weight change counts as both)',
          labelNames: ['change'] as const,
          registers: [registry],
        }),
    ),
    resolutions: get(
      'weightcache_membership_dns_resolutions_total',
      () =>
        new Counter({
          name: 'weightcache_membership_dns_resolutions_total',
          help: 'DNS membership refreshes by result (ok: at least one record type answered)',
          labelNames: ['result'] as const,
          registers: [registry],
        }),
    ),
    dnsFailures: get(
      'weightcache_membership_dns_kept_total',
      () =>
        new Counter({
          name: 'weightcache_membership_dns_kept_total',
          help: 'DNS refreshes that failed or came back empty, so the last known members were kept',
          registers: [registry],
        }),
    ),
  };
}
