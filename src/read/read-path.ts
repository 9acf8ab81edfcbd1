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
import { chunkCount, chunkExtent, chunkKey, chunkName } from '../chunk/name.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Resolver } from '../coherence/resolver.js';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import type { Limiter } from '../fill/limiter.js';
import { SingleFlight } from '../fill/single-flight.js';
import type { Logger } from '../log/logger.js';
import type { Metrics, Source } from '../metrics/metrics.js';
import type { ObjectInfo, ObjectName, ObjectVersion, Origin } from '../origin/origin.js';
import type { DramTier } from '../tier/dram.js';
import type { Chunk, Tier } from '../tier/tier.js';

export interface ReadPathOptions {
  readonly origin: Origin;
  readonly leases: Resolver;
  readonly dram: DramTier;
  readonly nvme: Tier | null;
  readonly chunkSize: number;
  /** Chunks fetched ahead of the one being sent (0 = none). */
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

  constructor(private readonly o: ReadPathOptions) {}

  get chunkSize(): number {
    return this.o.chunkSize;
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
    const window: Array<Promise<Located>> = [];
    let next = first;
    const fill = () => {
      while (next <= last && window.length <= this.o.readAhead) {
        const p = this.chunk(info, next++, signal);
        p.catch(() => {}); // observed when its turn comes; don't let an early failure go unhandled
        window.push(p);
      }
    };
    fill();
    for (let i = first; i <= last; i++) {
      signal?.throwIfAborted();
      const { chunk, source } = await window.shift()!;
      fill();
      const from = i === first ? start - i * cs : 0;
      const to = i === last ? end - i * cs + 1 : chunk.data.length;
      this.o.metrics.servedBytes.inc({ source }, to - from);
      const whole = from === 0 && to === chunk.data.length;
      yield whole
        ? { data: chunk.data, source, crc32c: chunk.crc32c }
        : { data: chunk.data.subarray(from, to), source };
    }
  }

  /** Where chunk `index` of a version can be had now, without fetching it. */
  peekSource(info: Versioned, index: number): Source {
    const key = this.keyOf(info, index);
    if (this.o.dram.has(key)) return 'dram';
    if (this.o.nvme?.has(key)) return 'nvme';
    return 'origin';
  }

  /**
   * Makes sure a chunk is cached where it belongs: at its owner in a cluster
   * (without bringing it here), else locally. Used by prefetch.
   */
  async warm(info: Versioned, index: number, signal?: AbortSignal): Promise<void> {
    const key = this.keyOf(info, index);
    if (this.o.cluster) {
      const name = chunkName(this.o.origin.id, info, this.o.chunkSize, index);
      const warmed = await this.o.cluster.warm(key, name, signal).catch((err: unknown) => {
        if (CacheError.is(err, 'VERSION_CHANGED')) this.o.leases.forget(info);
        throw err;
      });
      if (warmed) return;
    }
    await this.chunk(info, index, signal);
  }

  /** One chunk: DRAM → NVMe → peers → origin, misses coalesced per chunk. */
  async chunk(info: Versioned, index: number, signal?: AbortSignal): Promise<Located> {
    if (index < 0 || index >= chunkCount(info.size, this.o.chunkSize)) {
      throw new CacheError('INTERNAL', `chunk ${index} out of bounds for ${info.container}/${info.key}`);
    }
    const key = this.keyOf(info, index);
    const hot = this.o.dram.peek(key);
    if (hot) {
      this.o.metrics.chunkLookups.inc({ source: 'dram' });
      return { chunk: hot, source: 'dram' };
    }
    const { promise, shared } = this.flights.do(key, () => this.load(key, info, index));
    if (shared) this.o.metrics.coalescedFills.inc();
    // A client that goes away stops waiting, but the shared fill goes on for the others.
    return abortable(promise, signal);
  }

  private async load(key: string, info: Versioned, index: number): Promise<Located> {
    const fromDisk = await this.o.nvme?.get(key);
    if (fromDisk) {
      this.o.metrics.chunkLookups.inc({ source: 'nvme' });
      await this.o.dram.put(key, fromDisk);
      return { chunk: fromDisk, source: 'nvme' };
    }
    if (this.o.cluster) {
      const name = chunkName(this.o.origin.id, info, this.o.chunkSize, index);
      const { length } = chunkExtent(info.size, this.o.chunkSize, index);
      const got = await this.o.cluster.fetch(key, name, length).catch((err: unknown) => {
        // The owner found the version gone: re-resolve the name on the next request here too.
        if (CacheError.is(err, 'VERSION_CHANGED')) this.o.leases.forget(info);
        throw err;
      });
      if (got) {
        this.o.metrics.chunkLookups.inc({ source: 'peer' });
        if (got.ownedHere || this.o.keepPeerChunks) this.store(key, got.chunk);
        return { chunk: got.chunk, source: 'peer' };
      }
      if (this.o.originFallback === false) {
        throw new CacheError(
          'ORIGIN_UNAVAILABLE',
          `no peer could serve chunk ${index} of ${info.container}/${info.key}, and origin fallback is off`,
        );
      }
    }
    const chunk = await this.fillFromOrigin(info, index);
    this.o.metrics.chunkLookups.inc({ source: 'origin' });
    this.store(key, chunk);
    return { chunk, source: 'origin' };
  }

  /**
   * DRAM, and write-through to NVMe (not only demotion on DRAM eviction), so a
   * restart finds every chunk ever filled: warm restarts must not re-download.
   * The NVMe write is not awaited: the client should not wait for the disk.
   */
  private store(key: string, chunk: Chunk): void {
    void this.o.dram.put(key, chunk);
    void this.o.nvme?.put(key, chunk).catch((err) => this.o.log.warn({ err }, 'nvme put failed'));
  }

  private async fillFromOrigin(info: Versioned, index: number): Promise<Chunk> {
    const { offset, length } = chunkExtent(info.size, this.o.chunkSize, index);
    const m = this.o.metrics;
    const data = await this.o.originLimiter.run(async () => {
      const done = m.originDuration.startTimer({ op: 'read' });
      try {
        const buf = await this.o.origin.read(info, info, offset, length);
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
        `origin returned ${data.length} bytes for chunk ${index} of ${info.container}/${info.key}, expected ${length}`,
      );
    }
    m.originBytes.inc(length);
    return { data, crc32c: crc32c(data) };
  }

  private keyOf(info: Versioned, index: number): string {
    return chunkKey(chunkName(this.o.origin.id, info, this.o.chunkSize, index));
  }
}
