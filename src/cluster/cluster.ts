/**
 * This process's view of the cache cluster: who the members are, who owns a
 * chunk, and reading chunks from peers over the native transport.
 *
 * The rule that keeps reads from looping and the origin read once per chunk:
 * **a member fills from the origin only the chunks it owns in its own view of
 * the membership — or stands in for: those whose every member ranked above it
 * is down in its view. Asked for any other chunk, it answers from its local
 * tiers or NOT_FOUND.** So:
 *   - a non-owner (or a sidecar) asks the owner, which fills once for everyone;
 *     if the owner is down (unreachable, or in backoff) it asks the next member
 *     in rank to stand in, reporting whom it found down. The stand-in counts
 *     that report as a failure it observed (peers are authenticated by the
 *     cluster secret; one count per backoff period, PeerHealth.reported) and
 *     fills once for everyone — its single-flight coalesces every reader — or,
 *     if a member above it is up in its view, answers NOT_FOUND; the reader then
 *     reads the origin itself (or fails, with sidecar.originFallback off);
 *   - an owner or stand-in that misses asks the others in rank order first (up
 *     to cluster.ownerProbes, local tiers only) — after a scale-out the previous
 *     owner is next in rank, after a restart the chunk is on the stand-in that
 *     filled it or on the member's NVMe under its old address — so chunks are
 *     copied, not re-downloaded.
 * A reader sends at most MAX_PEER_TRIES requests per chunk and a stand-in never
 * forwards a fill, so no request crosses more than one hop.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ChunkName } from '../chunk/name.js';
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { Membership } from '../placement/membership.js';
import { ownerOf } from '../placement/ownership.js';
import { PeerHealth, usable } from '../placement/peer-health.js';
import { type Member, rank } from '../placement/rendezvous.js';
import type { Chunk } from '../tier/tier.js';
import { nativeTcp, type Transport, type TransportPeer } from '../transport/index.js';
import { MAX_STAND_IN_REPORT, RemoteError } from '../transport/messages.js';
import { Messages } from '../transport/rpc.js';
import { PeerMetrics } from './peer-metrics.js';

/** How many peers a reader's miss may ask before reading the origin itself. */
export const MAX_PEER_TRIES = 3;

export interface ClusterOptions {
  readonly config: Config['cluster'];
  /** This member's transport address; null for a sidecar (never an owner). */
  readonly self: string | null;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Cluster secret proven to peers on connect (auth.clusterSecretFile); null: none. */
  readonly secret?: Buffer | null;
  /** The backend peers are reached over (default: the native TCP transport). */
  readonly transport?: Transport;
}

export interface PeerChunk {
  readonly chunk: Chunk;
  /** Where it came from, for logs. */
  readonly from: string;
  /** True when this process should keep the chunk (it is the owner now). */
  readonly ownedHere: boolean;
}

/** How a reader asks one peer: fill (the owner), stand in for those found down, or local tiers only. */
type AskMode = { localOnly?: true; standInFor?: readonly string[] };

export class Cluster {
  private readonly clients = new Map<string, TransportPeer>();
  private readonly health: PeerHealth;
  private readonly peerMetrics: PeerMetrics;
  private readonly unsubscribe: () => void;
  /** This member's address as it appears in the member list (hostnames resolved), or null. */
  private readonly self: string | null;
  /** Identifies this process to peers (HELLO nodeId): a lease holder's identity at each home. */
  readonly nodeId: string;
  /** Requests peers send back on our connections to them, registered by their owners (a home's LEASE_REVOKE). */
  readonly messages = new Messages();

  private constructor(
    private readonly membership: Membership,
    private readonly o: ClusterOptions,
  ) {
    this.self = o.self === null ? null : (membership.self ?? o.self);
    // A sidecar's id must be unique across GPU hosts and restarts: homes key leases by it.
    this.nodeId = this.self ?? `sidecar-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.health = new PeerHealth({ backoffMs: o.config.peerBackoff, maxBackoffMs: o.config.peerBackoffMax });
    this.peerMetrics = new PeerMetrics(o.metrics);
    // Connections to members that left are closed; new members connect on first use.
    this.unsubscribe = membership.onChange((_now, _added, removed) => {
      for (const m of removed) {
        const c = this.clients.get(m.address);
        this.clients.delete(m.address);
        void c?.close();
      }
    });
  }

  static async start(o: ClusterOptions): Promise<Cluster> {
    const membership = await Membership.start(o.config, { log: o.log, metrics: o.metrics });
    return new Cluster(membership, o);
  }

  /** This member's address in the member list; null for a sidecar. */
  get selfAddress(): string | null {
    return this.self;
  }

  members(): readonly Member[] {
    return this.membership.members();
  }

  /** False while a peer is in backoff after failures. */
  available(address: string): boolean {
    return this.health.available(address);
  }

  /** Records a failure to reach a peer (it is skipped for a backoff period). */
  failed(address: string): void {
    this.health.failed(address);
  }

  /** Calls `fn` after every change of the member list. */
  onMembershipChange(fn: () => void): () => void {
    return this.membership.onChange(() => fn());
  }

  /** Does this process own `key` in its current view? (A sidecar owns nothing.) */
  owns(key: string): boolean {
    return this.self !== null && ownerOf(key, this.membership.members()) === this.self;
  }

  /**
   * Asked to stand in for the members ranked above this one for `key` (a
   * READ_CHUNK with STAND_IN from a reader that found them down): true when
   * this member should fill the chunk. Each member above must be down here —
   * in backoff already, or reported down by the reader, which then counts as a
   * failure observed here. When one of them is up here the report is not
   * recorded at all (it would only keep a live member out of our own reads)
   * and the answer is false: the caller answers from local tiers or NOT_FOUND.
   */
  standIn(key: string, reportedDown: readonly string[]): boolean {
    const ranked = rank(key, this.membership.members());
    const i = this.self === null ? -1 : ranked.findIndex((m) => m.address === this.self);
    if (i <= 0) {
      if (i < 0) this.peerMetrics.standIn.inc({ result: 'refused' });
      return i === 0; // the owner fills anyway; a member not in its own list never
    }
    const above = ranked.slice(0, i).map((m) => m.address);
    const reported = new Set(reportedDown);
    if (!above.every((a) => reported.has(a) || !this.health.available(a))) {
      this.peerMetrics.standIn.inc({ result: 'refused' });
      return false;
    }
    for (const a of above) if (reported.has(a)) this.health.reported(a);
    this.peerMetrics.standIn.inc({ result: 'fill' });
    return true;
  }

  /**
   * Who fills `ranked`'s chunk here: 'owner' (first in rank), 'stand-in'
   * (every member above this one is in backoff), else 'reader' (a sidecar always).
   */
  private role(ranked: readonly Member[]): 'owner' | 'stand-in' | 'reader' {
    const i = this.self === null ? -1 : ranked.findIndex((m) => m.address === this.self);
    if (i < 0) return 'reader';
    if (i === 0) return 'owner';
    for (let j = 0; j < i; j++) if (this.health.available(ranked[j]!.address)) return 'reader';
    return 'stand-in';
  }

  /**
   * Asks peers for a whole chunk, per the rule above. Undefined when no peer
   * had it (the caller then reads the origin). VERSION_CHANGED from a peer is
   * an answer, not a failure: it is thrown; so is an ORIGIN_* or OVERLOADED
   * answer from the member asked to fill (pass-through, docs/cluster.md).
   */
  async fetch(
    key: string,
    name: ChunkName,
    length: number,
    signal?: AbortSignal,
  ): Promise<PeerChunk | undefined> {
    const ranked = rank(key, this.membership.members());
    const role = this.role(ranked);
    if (role !== 'reader') {
      // An owner (or stand-in) that misses asks the others in rank order before the
      // origin: after a scale-out the previous owner is next in rank; after a restart
      // the chunk sits on the member that stood in, or, under a new address (a
      // Kubernetes pod's new IP), still valid on NVMe at a random rank — so up to
      // cluster.ownerProbes members are asked, local tiers only. What it gets it keeps.
      const probes = usable(ranked, this.health, this.self ?? undefined).slice(0, this.o.config.ownerProbes);
      for (const peer of probes) {
        const got = await this.ask(peer.address, name, length, signal, { localOnly: true });
        if (got.chunk) return { chunk: got.chunk, from: peer.address, ownedHere: true };
      }
      return undefined;
    }
    // A reader walks the ranking. The first member it reaches that is up fills:
    // the owner, or — reporting the members above it found down — a stand-in.
    // Once a member has answered (it is up), those below it are asked for what
    // they hold only. Peers in backoff are not asked, unless every peer is.
    const anyUp = ranked.some((m) => m.address !== this.self && this.health.available(m.address));
    const down: string[] = [];
    let answered = false;
    let tries = 0;
    for (const peer of ranked) {
      if (tries >= MAX_PEER_TRIES) break;
      if (peer.address === this.self) {
        answered = true; // this member is up: no one below it stands in
        continue;
      }
      if (anyUp && !this.health.available(peer.address)) {
        if (!answered) down.push(peer.address);
        continue;
      }
      tries++;
      const mode: AskMode =
        answered || down.length > MAX_STAND_IN_REPORT
          ? { localOnly: true }
          : down.length > 0
            ? { standInFor: [...down] }
            : {};
      const got = await this.ask(peer.address, name, length, signal, mode);
      if (got.chunk) return { chunk: got.chunk, from: peer.address, ownedHere: false };
      if (got.down) {
        if (!answered) down.push(peer.address);
      } else answered = true;
    }
    return undefined;
  }

  /**
   * One READ_CHUNK to one peer: the chunk; or `down` (unreachable, timed out,
   * bad checksum, draining: put in backoff); or neither (it answered without
   * the chunk). Throws VERSION_CHANGED, and an origin failure or overload of a
   * peer asked to fill: every reader reading the origin itself would multiply
   * that load, so the answer is passed up instead.
   */
  private async ask(
    address: string,
    name: ChunkName,
    length: number,
    signal: AbortSignal | undefined,
    mode: AskMode,
  ): Promise<{ chunk?: Chunk; down?: boolean }> {
    const done = this.peerMetrics.start();
    try {
      const got = await this.client(address).readChunk(name, 0, length, { signal, ...mode });
      this.health.succeeded(address);
      done('hit', length);
      return { chunk: { data: got.data, crc32c: got.crc32c } };
    } catch (err) {
      if (signal?.aborted) throw err;
      if (CacheError.is(err, 'NOT_FOUND')) {
        done('miss', 0); // a member without the chunk (or declining to stand in): a fine answer
        return {};
      }
      if (CacheError.is(err, 'VERSION_CHANGED')) {
        done('miss', 0);
        throw err;
      }
      done('error', 0);
      if (err instanceof RemoteError && err.code !== 'SHUTTING_DOWN') {
        if (!mode.localOnly && (err.code.startsWith('ORIGIN_') || err.code === 'OVERLOADED')) throw err;
        return {}; // up, but could not serve (e.g. a chunk file evicted mid-send: TIER_IO)
      }
      this.health.failed(address);
      this.o.log.warn({ peer: address, err: (err as Error).message }, 'peer read failed; trying the next');
      return { down: true };
    }
  }

  /**
   * Makes the owner of a chunk hold it (prefetch: "each owner pulls its own
   * chunks"): asks the owner for the chunk's first byte, so the owner fills
   * the whole chunk from the origin while one byte crosses the network. False
   * when this process is the owner, or the owner is down — the caller then
   * warms the chunk through its own read path.
   */
  async warm(key: string, name: ChunkName, signal?: AbortSignal): Promise<boolean> {
    const owner = rank(key, this.membership.members())[0];
    if (!owner || owner.address === this.self || !this.health.available(owner.address)) return false;
    const done = this.peerMetrics.start();
    try {
      await this.client(owner.address).readChunk(name, 0, 1, { signal });
      this.health.succeeded(owner.address);
      done('hit', 1);
      return true;
    } catch (err) {
      if (signal?.aborted || CacheError.is(err, 'VERSION_CHANGED')) throw err;
      done('error', 0);
      // An answer (e.g. NOT_FOUND from a member whose view differs) says nothing about its health.
      if (!(err instanceof RemoteError) || err.code === 'SHUTTING_DOWN') this.health.failed(owner.address);
      return false;
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.membership.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  /** The pooled transport connection to a peer. */
  client(address: string): TransportPeer {
    let c = this.clients.get(address);
    if (!c) {
      const i = address.lastIndexOf(':');
      c = (this.o.transport ?? nativeTcp).connect({
        host: address.slice(0, i).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(i + 1)),
        timeoutMs: this.o.config.peerTimeout,
        nodeId: this.nodeId,
        logger: this.o.log,
        secret: this.o.secret ?? null,
        messages: this.messages,
      });
      this.clients.set(address, c);
    }
    return c;
  }
}
