/**
 * The read path, top to bottom (docs/architecture.md, "The read path"):
 *
 *   name ─► version (lease table) ─► byte range ─► chunk list ─► for each chunk,
 *   in order, with a bounded read-ahead window:
 *       DRAM ─► NVMe ─► peers (the owner; see cluster/cluster.ts) ─► origin
 *       (single-flight per chunk, bounded origin concurrency)
 *   ─► slices of the chunk Buffers (no copies) ─► the protocol door streams them.
 *
 * One read is served from one version: every chunk is named by that version,
 * and the origin refuses bytes of any other (VERSION_CHANGED), so a replaced
 * object fails a cold read cleanly instead of mixing old and new bytes.
 */

import { crc32c } from '../chunk/checksum.js';
import { chunkCount, chunkExtent } from '../chunk/name.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Resolver } from '../coherence/resolver.js';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import type { Limiter } from '../fill/limiter.js';
import { SingleFlight } from '../fill/single-flight.js';
import { noteServed } from '../log/access.js';
import type { Logger } from '../log/logger.js';
import type { Metrics, Source } from '../metrics/metrics.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName, ObjectVersion, Origin } from '../origin/origin.js';
import { type ChunkAddress, chunkAddress } from '../store/address.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { Chunk } from '../tier/tier.js';
import { ReadAhead } from './read-ahead.js';

export interface ReadPathOptions {
  readonly origin: Origin;
  readonly leases: Resolver;
  /** DRAM and NVMe (src/store/tiered.ts). */
  readonly store: ChunkStore;
  readonly chunkSize: number;
  /**
   * Chunks fetched ahead of the one being sent, per read, and ahead of the
   * head of an object read sequentially across requests (0 = none).
   */
  readonly readAhead: number;
  readonly originLimiter: Limiter;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Peers to read from before the origin; absent or null for a lone node. */
  readonly cluster?: Cluster | null;
  /**
   * Keep chunks read from peers in the local tiers even when not their owner:
   * true for a sidecar (its local tier is the point), false for a node (the
   * owner holds them; copies would only crowd out the chunks it owns).
   */
  readonly keepPeerChunks?: boolean;
  /**
   * Read the origin when no peer could serve a chunk. Always true for nodes;
   * a sidecar may turn it off (sidecar.originFallback) so GPU hosts never
   * reach the origin directly. Default true.
   */
  readonly originFallback?: boolean;
}

/** The object a chunk belongs to: a name and a version. */
export type Versioned = ObjectName & ObjectVersion;

export interface Located {
  readonly chunk: Chunk;
  readonly source: Source;
}

export interface Slice {
  /** A view into a cached chunk's Buffer: never a copy. */
  readonly data: Buffer;
  readonly source: Source;
  /** The chunk's CRC32C, present when the slice is the whole chunk. */
  readonly crc32c?: number;
}

export class ReadPath {
  private readonly flights = new SingleFlight<Located>();
  private readonly ahead: ReadAhead;

  constructor(private readonly o: ReadPathOptions) {
    this.ahead = new ReadAhead(o.readAhead);
  }

  get chunkSize(): number {
    return this.o.chunkSize;
  }

  /** Chunks read ahead of the one being sent, per read (what a slow reader's read holds). */
  get readAhead(): number {
    return this.o.readAhead;
  }

  /** The version a name means now (leases); see Resolver.resolve for `expectEtag`. */
  resolve(name: ObjectName, signal?: AbortSignal, expectEtag?: string): Promise<ObjectInfo> {
    return this.o.leases.resolve(name, signal, expectEtag);
  }

  /**
   * Bytes [start, end] (inclusive) of one version, as slices in order. At most
   * readAhead + 1 chunks are in flight or buffered per read, so a slow client
   * holds bounded memory however large the range.
   */
  async *read(info: ObjectInfo, start: number, end: number, signal?: AbortSignal): AsyncGenerator<Slice> {
    if (end < start) return;
    const cs = this.o.chunkSize;
    const first = Math.floor(start / cs);
    const last = Math.floor(end / cs);
    this.lookAhead(info, first, last);
    const window: Array<Promise<Slice>> = [];
    let next = first;
    // Tops the window up to the slice to hand on next plus readAhead more. It runs
    // only when the consumer asks for the next slice, never while one is out with
    // it: the consumer's slice and the readAhead behind it are all a read holds.
    const fill = () => {
      while (next <= last && window.length <= this.o.readAhead) {
        const i = next++;
        const from = i === first ? start - i * cs : 0;
        const to = i === last ? end - i * cs + 1 : chunkExtent(info.size, cs, i).length;
        const p = this.slice(info, i, from, to, signal);
        p.catch(() => {}); // observed when its turn comes; don't let an early failure go unhandled
        window.push(p);
      }
    };
    for (let i = first; i <= last; i++) {
      signal?.throwIfAborted();
      fill();
      const slice = await window.shift()!;
      this.o.metrics.servedBytes.inc({ source: slice.source }, slice.data.length);
      noteServed(slice.source, slice.data.length);
      yield slice;
    }
  }

  /**
   * Makes chunks `first`..`last` of a version resident without reading them
   * out: what the native door's parked misses wait for (src/http/native-fill.ts)
   * before they are answered from the store. The same steps as read(): the
   * look-ahead across requests, then each chunk through chunk(), readAhead + 1
   * at a time. Resolves to where chunk `first` was found or fetched from (what
   * read() would have reported as the answer's source). False, before
   * anything is fetched, when a chunk would not stay here (a cluster member's
   * chunk owned by another member, not cached here): the caller then reads it
   * through read() as any miss, so it is fetched once. Once `signal` aborts no
   * further chunk is started and it rejects with the signal's reason.
   */
  async fill(info: ObjectInfo, first: number, last: number, signal?: AbortSignal): Promise<Source | false> {
    last = Math.min(last, chunkCount(info.size, this.o.chunkSize) - 1);
    if (last < first) return this.peekSource(info, first);
    const cluster = this.o.cluster;
    if (cluster && !this.o.keepPeerChunks) {
      for (let i = first; i <= last; i++) {
        const a = this.addressOf(info, i);
        if (this.o.store.where(a) === undefined && !cluster.owns(a.key)) return false;
      }
    }
    this.lookAhead(info, first, last);
    let next = first;
    let source: Source = 'dram';
    const worker = async () => {
      while (next <= last) {
        // Nobody waits any more: start no further chunk (those started go on; shared ones for their other readers).
        signal?.throwIfAborted();
        const i = next++;
        const got = await this.chunk(info, i, signal);
        if (i === first) source = got.source;
      }
    };
    const width = Math.min(this.o.readAhead + 1, last - first + 1);
    await Promise.all(Array.from({ length: width }, worker));
    return source;
  }

  /**
   * Bytes [from, to) of chunk `index`. Part of a chunk that only NVMe holds
   * is read through the store's readRange (by blocks where the tier can, and
   * not promoted to DRAM), so a 64 KiB range need not read the whole chunk;
   * everything else goes through chunk().
   */
  private async slice(
    info: Versioned,
    index: number,
    from: number,
    to: number,
    signal?: AbortSignal,
  ): Promise<Slice> {
    if (from > 0 || to < chunkExtent(info.size, this.o.chunkSize, index).length) {
      const a = this.addressOf(info, index);
      if (this.o.store.where(a) === 'nvme') {
        const part = await this.o.store.readRange(a, from, to - from);
        if (part) {
          this.o.metrics.chunkLookups.inc({ source: 'nvme' });
          return { data: part, source: 'nvme' };
        }
      }
    }
    const { chunk, source } = await this.chunk(info, index, signal);
    const whole = from === 0 && to === chunk.data.length;
    return whole
      ? { data: chunk.data, source, crc32c: chunk.crc32c }
      : { data: chunk.data.subarray(from, to), source };
  }

  /**
   * Across requests: when the reads of an object move forward, start
   * fetching the chunks past the head that no tier holds, so the origin works
   * while the client receives. Only with origin slots to spare (a reader
   * waiting for its own chunk goes first), and in the background: a failure
   * here is forgotten, the reader that needs the chunk asks again.
   */
  private lookAhead(info: Versioned, first: number, last: number): void {
    const count = chunkCount(info.size, this.o.chunkSize);
    const { from, to } = this.ahead.next(
      `${info.container}\u0000${info.key}\u0000${info.etag}`,
      first,
      last,
      count,
    );
    for (let i = from; i < to && this.o.originLimiter.spare > 0; i++) {
      const a = this.addressOf(info, i);
      if (this.flights.has(a.key) || this.o.store.where(a) !== undefined) continue;
      this.o.metrics.readAheadChunks.inc();
      this.chunk(info, i).catch(() => {});
    }
  }

  /** Where chunk `index` of a version can be had now, without fetching it. */
  peekSource(info: Versioned, index: number): Source {
    return this.o.store.where(this.addressOf(info, index)) ?? 'origin';
  }

  /**
   * Makes sure a chunk is cached where it belongs: at its owner in a cluster
   * (without bringing it here: 'peer'), else locally (where it was found).
   * Used by prefetch.
   */
  async warm(info: Versioned, index: number, signal?: AbortSignal): Promise<Source> {
    if (this.o.cluster) {
      const a = this.addressOf(info, index);
      const warmed = await this.o.cluster.warm(a.key, a.name, signal).catch((err: unknown) => {
        if (CacheError.is(err, 'VERSION_CHANGED')) this.o.leases.forget(info);
        throw err;
      });
      if (warmed) return 'peer';
    }
    return (await this.chunk(info, index, signal)).source;
  }

  /** One chunk: DRAM → NVMe → peers → origin, misses coalesced per chunk. */
  async chunk(info: Versioned, index: number, signal?: AbortSignal): Promise<Located> {
    if (index < 0 || index >= chunkCount(info.size, this.o.chunkSize)) {
      throw new CacheError('INTERNAL', `chunk ${index} out of bounds for ${formatName(info)}`);
    }
    const a = this.addressOf(info, index);
    const hot = this.o.store.peek(a);
    if (hot) {
      this.o.metrics.chunkLookups.inc({ source: 'dram' });
      return { chunk: hot, source: 'dram' };
    }
    const { promise, shared } = this.flights.do(a.key, () => this.load(a, info, index));
    if (shared) this.o.metrics.coalescedFills.inc();
    // A client that goes away stops waiting, but the shared fill goes on for the others.
    return abortable(promise, signal);
  }

  private async load(a: ChunkAddress, info: Versioned, index: number): Promise<Located> {
    const stored = await this.o.store.get(a);
    if (stored) {
      this.o.metrics.chunkLookups.inc({ source: stored.tier });
      return { chunk: stored.chunk, source: stored.tier };
    }
    if (this.o.cluster) {
      const { length } = chunkExtent(info.size, this.o.chunkSize, index);
      const got = await this.o.cluster.fetch(a.key, a.name, length).catch((err: unknown) => {
        // The owner found the version gone: re-resolve the name on the next request here too.
        if (CacheError.is(err, 'VERSION_CHANGED')) this.o.leases.forget(info);
        throw err;
      });
      if (got) {
        this.o.metrics.chunkLookups.inc({ source: 'peer' });
        const chunk = got.ownedHere || this.o.keepPeerChunks ? this.o.store.put(a, got.chunk) : got.chunk;
        return { chunk, source: 'peer' };
      }
      if (this.o.originFallback === false) {
        throw new CacheError(
          'PEER_UNAVAILABLE',
          `no peer could serve chunk ${index} of ${formatName(info)}, and origin fallback is off`,
        );
      }
    }
    const filled = await this.fillFromOrigin(info, index);
    this.o.metrics.chunkLookups.inc({ source: 'origin' });
    // DRAM now; NVMe written through in the background (not only demotion on
    // DRAM eviction), so a restart finds every chunk ever filled: warm
    // restarts must not re-download. The client never waits for the disk.
    return { chunk: this.o.store.put(a, filled), source: 'origin' };
  }

  private async fillFromOrigin(info: Versioned, index: number): Promise<Chunk> {
    const { offset, length } = chunkExtent(info.size, this.o.chunkSize, index);
    const m = this.o.metrics;
    const data = await this.o.originLimiter.run(async () => {
      const done = m.originDuration.startTimer({ op: 'read' });
      try {
        // Straight into store memory: DRAM keeps these bytes without a copy.
        const buf = await this.o.origin.read(info, info, offset, length, {
          into: this.o.store.allocate(length),
        });
        m.originRequests.inc({ op: 'read', result: 'ok' });
        return buf;
      } catch (err) {
        const e = CacheError.from(err, 'ORIGIN_UNAVAILABLE');
        m.originRequests.inc({ op: 'read', result: e.code.toLowerCase() });
        if (e.code === 'VERSION_CHANGED') {
          m.versionChanges.inc();
          this.o.leases.forget(info); // the next request re-resolves the name
        }
        throw e;
      } finally {
        done();
      }
    });
    // The origin contract says exactly `length` bytes; a cache trusts no one.
    if (data.length !== length) {
      throw new CacheError(
        'ORIGIN_BAD_RESPONSE',
        `origin returned ${data.length} bytes for chunk ${index} of ${formatName(info)}, expected ${length}`,
      );
    }
    m.originBytes.inc(length);
    return { data, crc32c: crc32c(data) };
  }

  /** The 16-byte id the chunk store knows this version's chunks by (chunk i is (id, i)). */
  objectIdOf(info: Versioned): Buffer {
    return this.addressOf(info, 0).objectId;
  }

  private addressOf(info: Versioned, index: number): ChunkAddress {
    return chunkAddress(this.o.origin.id, info, this.o.chunkSize, index);
  }
}
