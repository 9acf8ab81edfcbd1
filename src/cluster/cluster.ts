/**
 * This process's view of the cache cluster: who the members are, who owns a
 * chunk, and reading chunks from peers over the native transport.
 *
 * The rule that keeps reads from looping and the origin read once per chunk:
 * **a member fills from the origin only the chunks it owns in its own view of
 * the membership; asked for any other chunk, it answers from its local tiers
 * or NOT_FOUND.** So:
 *   - a non-owner (or a sidecar) asks the owner, which fills once for everyone;
 *     if the owner is down it probes the next in rank (local tiers only), then
 *     reads the origin itself;
 *   - an owner that misses asks the others in rank order first (up to
 *     cluster.ownerProbes) — after a scale-out the previous owner is next in
 *     rank, after a restart under a new address the chunk is still on that
 *     member's NVMe — so moved chunks are copied, not re-downloaded.
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
import { RemoteError } from '../transport/messages.js';
import { Messages } from '../transport/rpc.js';
import { PeerMetrics } from './peer-metrics.js';

/** How many peers a miss may try before reading the origin itself. */
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
   * Asks peers for a whole chunk, per the rule above. Undefined when no peer
   * had it (the caller then reads the origin). VERSION_CHANGED from a peer is
   * an answer, not a failure: it is thrown.
   */
  async fetch(
    key: string,
    name: ChunkName,
    length: number,
    signal?: AbortSignal,
  ): Promise<PeerChunk | undefined> {
    const ranked = rank(key, this.membership.members());
    const ownedHere = this.self !== null && ranked[0]?.address === this.self;
    // An owner that misses asks the others in rank order before the origin: after a
    // scale-out the previous owner is next in rank; after a restart under a new
    // address (a Kubernetes pod's new IP) the chunk sits, still valid, on NVMe at a
    // random rank — so up to cluster.ownerProbes members are asked, local tiers only.
    const candidates = ownedHere
      ? usable(ranked.slice(1), this.health, this.self ?? undefined).slice(0, this.o.config.ownerProbes)
      : usable(ranked, this.health, this.self ?? undefined).slice(0, MAX_PEER_TRIES);
    for (const peer of candidates) {
      // Only the owner itself may fill; everyone else is asked for what it holds.
      const localOnly = ownedHere || peer.address !== ranked[0]?.address;
      const done = this.peerMetrics.start();
      try {
        const got = await this.client(peer.address).readChunk(name, 0, length, { signal, localOnly });
        this.health.succeeded(peer.address);
        done('hit', length);
        return { chunk: { data: got.data, crc32c: got.crc32c }, from: peer.address, ownedHere };
      } catch (err) {
        if (signal?.aborted) throw err;
        if (CacheError.is(err, 'NOT_FOUND')) {
          done('miss', 0); // a member without the chunk: a fine answer
          continue;
        }
        if (CacheError.is(err, 'VERSION_CHANGED')) {
          done('miss', 0);
          throw err;
        }
        done('error', 0);
        if (err instanceof RemoteError && err.code !== 'SHUTTING_DOWN') {
          // The peer is up and answered. If the owner could not fill because the
          // origin is failing or it is overloaded, every node reading the origin
          // itself would multiply that load: pass the answer up instead.
          if (!localOnly && (err.code.startsWith('ORIGIN_') || err.code === 'OVERLOADED')) throw err;
          continue; // e.g. a chunk file evicted mid-send (TIER_IO): try the next
        }
        this.health.failed(peer.address); // unreachable, timed out, bad checksum, refused, draining
        this.o.log.warn(
          { peer: peer.address, err: (err as Error).message },
          'peer read failed; trying the next',
        );
      }
    }
    return undefined;
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
