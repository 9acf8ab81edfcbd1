/**
 * Every metric weightcache exports, on one registry per process part (so
 * tests can run several nodes in one process). Prefix `weightcache_`, base
 * units, `_total` counters, no per-key labels (cardinality stays bounded by
 * the label values listed here).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { NativeHttpDoorStats } from '../http/native-binding.js';
import type { NativeRespDoorStats } from '../resp/native-binding.js';
import type { NativeNvmeStats, NativeStoreStats } from '../store/native.js';

/** The native door's parked-miss fills as JavaScript runs them (src/http/native-server.ts fillStats). */
export interface DoorFillCounts {
  fillsInProgress?: number;
  fillsCancelled?: number;
  fillsRefused?: number;
}

export type Source = 'dram' | 'nvme' | 'peer' | 'origin';
export type Protocol = 'http' | 'resp' | 'transport';
export type TierName = 'dram' | 'nvme';

/** The latency histograms' bounds (seconds); the native HTTP door counts its fast-path answers in the same. */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'weightcache_requests_total',
    help: 'Requests by protocol and result (ok, not_modified, client_error, server_error)',
    labelNames: ['protocol', 'result'] as const,
    registers: [this.registry],
    collect: () => this.syncNative(),
  });
  readonly requestDuration = new RequestDurationHistogram({
    name: 'weightcache_request_duration_seconds',
    help: 'Time from request to last byte sent, by protocol (fast-path answers of the native HTTP and RESP doors included)',
    labelNames: ['protocol'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /**
   * Native parts that answer without JavaScript (the FUSE workers) add their
   * counts here; each runs before a scrape, with the HTTP fast path's.
   */
  readonly nativeCounts = new Set<() => void>();
  readonly servedBytes = new Counter({
    name: 'weightcache_served_bytes_total',
    help: 'Bytes sent to clients, by the tier the chunk came from',
    labelNames: ['source'] as const,
    registers: [this.registry],
    collect: () => this.syncNative(),
  });
  readonly objectReads = new Counter({
    name: 'weightcache_object_reads_total',
    help: 'Object GETs with a body, by door (objects, s3, azure, hub) and the source of their first byte',
    labelNames: ['door', 'source'] as const,
    registers: [this.registry],
  });
  readonly s3SignedFastPath = new Counter({
    name: 'weightcache_s3_signed_fastpath_total',
    help: "Signed S3 reads (auth on) on the native door's fast path, by result: verified (the signature checked on an I/O thread and the request answered there), declined (left to JavaScript, which answers it: a signature not verified natively, a bucket out of the token's scope)",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly azureSignedFastPath = new Counter({
    name: 'weightcache_azure_signed_fastpath_total',
    help: "Azure Blob reads of a node with auth on the native door's fast path, by result: verified (SharedKey, a SAS or a bearer token checked on an I/O thread and the request answered there), declined (left to JavaScript, which answers it: not verified natively, or a container out of the token's scope)",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly chunkLookups = new Counter({
    name: 'weightcache_chunk_lookups_total',
    help: 'Chunk lookups on the read path, by where the chunk was found',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly originRequests = new Counter({
    name: 'weightcache_origin_requests_total',
    help: 'Requests to the origin by operation (stat, revalidate, read, list) and result',
    labelNames: ['op', 'result'] as const,
    registers: [this.registry],
  });
  readonly originBytes = new Counter({
    name: 'weightcache_origin_bytes_total',
    help: 'Bytes read from the origin',
    registers: [this.registry],
  });
  readonly originDuration = new Histogram({
    name: 'weightcache_origin_request_duration_seconds',
    help: 'Origin request latency by operation',
    labelNames: ['op'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly coalescedFills = new Counter({
    name: 'weightcache_coalesced_fills_total',
    help: 'Chunk misses that joined a fill already in flight instead of reading the origin again',
    registers: [this.registry],
  });
  readonly readAheadChunks = new Counter({
    name: 'weightcache_read_ahead_chunks_total',
    help: 'Chunks fetched ahead of sequential reads across requests (read-ahead), before any reader asked for them',
    registers: [this.registry],
  });
  readonly evictions = new Counter({
    name: 'weightcache_evictions_total',
    help: 'Chunks evicted from a tier to make room',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly checksumFailures = new Counter({
    name: 'weightcache_checksum_failures_total',
    help: 'Chunks whose bytes did not match their checksum (dropped and refetched, never served)',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly tierErrors = new Counter({
    name: 'weightcache_tier_errors_total',
    help: 'I/O errors in a tier by operation (read, write, delete, scan); the tier degrades, reads go on',
    labelNames: ['tier', 'op'] as const,
    registers: [this.registry],
  });
  readonly tierUsedBytes = new Gauge({
    name: 'weightcache_tier_used_bytes',
    help: 'Bytes of chunk data held by a tier',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly tierCapacityBytes = new Gauge({
    name: 'weightcache_tier_capacity_bytes',
    help: 'Capacity of a tier: its configured maxBytes, or less when the NVMe device is smaller (fitted at start and on ENOSPC)',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly tierEntries = new Gauge({
    name: 'weightcache_tier_entries',
    help: 'Chunks held by a tier',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly tierDegraded = new Gauge({
    name: 'weightcache_tier_degraded',
    help: '1 while a tier cannot store (unwritable or full device), else 0',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly leaseResolutions = new Counter({
    name: 'weightcache_lease_resolutions_total',
    help: 'Name-to-version resolutions by how they were answered (cached, resolved, revalidated_same, revalidated_changed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly versionChanges = new Counter({
    name: 'weightcache_version_changed_reads_total',
    help: 'Reads that failed cleanly because their version vanished at the origin mid-read',
    registers: [this.registry],
  });

  /** The DRAM store's native counters, read at scrape time (set by src/store/dram.ts). */
  dramStats: (() => NativeStoreStats) | undefined;
  readonly dramMemory = new Gauge({
    name: 'weightcache_dram_memory_bytes',
    help: 'DRAM store memory by kind: charged (indexed chunks in whole 4 KiB pages, bounded by cache.dram.maxBytes), pending (fills in progress, also within the budget), retired (evicted, freed when the last reader lets go), warm (free pages kept resident for the next fill), uncached (fills the budget had no room for, outside it, freed when collected)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.dramStats?.();
      if (!s) return;
      this.dramMemory.set({ kind: 'charged' }, s.chargedBytes);
      this.dramMemory.set({ kind: 'pending' }, s.pendingBytes);
      this.dramMemory.set({ kind: 'retired' }, s.retiredBytes);
      this.dramMemory.set({ kind: 'warm' }, s.warmBytes);
      this.dramMemory.set({ kind: 'uncached' }, s.uncachedBytes);
    },
  });
  readonly dramReferences = new Gauge({
    name: 'weightcache_dram_references',
    help: 'References to DRAM chunks held outside the store index (Buffers being read or sent, demotions); back to 0 once reads are done and collected',
    registers: [this.registry],
    collect: () => {
      const s = this.dramStats?.();
      if (s) this.dramReferences.set(s.outstandingRefs);
    },
  });
  readonly dramCopiedBytes = new Gauge({
    name: 'weightcache_dram_copied_bytes',
    help: 'Bytes copied into the DRAM store since start (a chunk kept from a Buffer the store did not allocate); fills and peer chunks read into store memory copy none',
    registers: [this.registry],
    collect: () => {
      const s = this.dramStats?.();
      if (s) this.dramCopiedBytes.set(s.copiedBytes);
    },
  });
  readonly dramUncachedFills = new Counter({
    name: 'weightcache_dram_uncached_fills_total',
    help: 'Fills served without being kept in DRAM: evicted chunks still being read held the memory (see docs/tiers.md)',
    registers: [this.registry],
  });

  /** The native HTTP door's counters, read at scrape time (set by src/node/node.ts with http.door: native). */
  httpDoorStats: (() => (NativeHttpDoorStats & DoorFillCounts) | undefined) | undefined;
  readonly fastPathRequests = new Counter({
    name: 'weightcache_http_fastpath_requests_total',
    help: 'Requests the native door looked at for its fast path, by result: hit (answered on an I/O thread, 304s included), or why it went to JavaScript: no_binding, miss (a chunk in neither DRAM nor NVMe, or an NVMe read that failed), unauthorised, busy (an earlier request of the connection still in JavaScript), other (a request the fast path does not answer), over_budget (fast-path answers queued for clients at http.maxInFlightBytes); and for misses parked while JavaScript fills them: parked (fills asked), resumed (answered on an I/O thread once filled), fallback (handed whole to JavaScript after a fill), park_overflow (not parked: at a parked-request limit), park_timeout (no fill within the request timeout: 504), fill_cancelled (a fill stopped before its last chunk: the parked request left or was answered 504), fill_refused (not filled: MAX_FILLS_IN_PROGRESS fills were running; JavaScript answered it whole)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s?.fastHits === undefined) return;
      this.fastPathRequests.reset();
      const set = (result: string, v: number | undefined) => {
        if (v) this.fastPathRequests.inc({ result }, v);
      };
      set('hit', s.fastHits);
      set('no_binding', s.fastNoBinding);
      set('miss', s.fastMisses);
      set('unauthorised', s.fastUnauthorised);
      set('busy', s.fastBusy);
      set('other', s.fastOther);
      set('over_budget', s.fastOverBudget);
      set('parked', s.fastFillParked);
      set('resumed', s.fastFillResumed);
      set('fallback', s.fastFillFallback);
      set('park_overflow', s.fastFillOverflow);
      set('park_timeout', s.fastFillTimeouts);
      set('fill_cancelled', s.fillsCancelled);
      set('fill_refused', s.fillsRefused);
    },
  });
  readonly fastPathBytes = new Counter({
    name: 'weightcache_http_fastpath_body_bytes_total',
    help: 'Body bytes the native door sent on its fast path (DRAM hits answered without JavaScript)',
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s?.fastBodyBytes === undefined) return;
      this.fastPathBytes.reset();
      if (s.fastBodyBytes > 0) this.fastPathBytes.inc(s.fastBodyBytes);
    },
  });
  readonly fastPathChunkRefs = new Gauge({
    name: 'weightcache_http_fastpath_chunk_references',
    help: 'DRAM chunk references held by fast-path answers not yet written; back to 0 once they are (or their clients are gone)',
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s?.fastChunkRefs !== undefined) this.fastPathChunkRefs.set(s.fastChunkRefs);
    },
  });
  readonly fastPathFills = new Gauge({
    name: 'weightcache_http_fastpath_fills_in_progress',
    help: "Fills of the native door's parked misses running in JavaScript (at most MAX_FILLS_IN_PROGRESS, 1024; cancelled ones finishing the chunk they fetch included)",
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s?.fillsInProgress !== undefined) this.fastPathFills.set(s.fillsInProgress);
    },
  });

  /** The native doors' NVMe reads, read at scrape time (set by src/store/tiered.ts with an NVMe tier). */
  nativeNvmeStats: (() => NativeNvmeStats | undefined) | undefined;
  readonly nativeNvmeReads = new Counter({
    name: 'weightcache_nvme_native_reads_total',
    help: 'Ranges the native doors (HTTP and RESP fast paths) read from NVMe chunk files on their I/O threads, by result: ok (verified and sent), or why the request went to JavaScript instead: corrupt (a block failed its CRC32C; JavaScript drops and refetches the chunk), missing (the file was gone, short or unreadable), busy (the thread had kMaxDiskRanges ranges or kMaxDiskBufferBytes of read buffers)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.nativeNvmeStats?.();
      if (!s) return;
      this.nativeNvmeReads.reset();
      const set = (result: string, v: number) => {
        if (v) this.nativeNvmeReads.inc({ result }, v);
      };
      set('ok', s.ranges);
      set('corrupt', s.corrupt);
      set('missing', s.missing);
      set('busy', s.busy);
    },
  });
  readonly nativeNvmeBytes = new Counter({
    name: 'weightcache_nvme_native_read_bytes_total',
    help: 'Bytes the native doors read from NVMe chunk files (headers and whole 4 KiB blocks: a little more than they serve)',
    registers: [this.registry],
    collect: () => {
      const s = this.nativeNvmeStats?.();
      if (!s) return;
      this.nativeNvmeBytes.reset();
      if (s.bytesRead > 0) this.nativeNvmeBytes.inc(s.bytesRead);
    },
  });
  readonly nativeNvmeBuffers = new Gauge({
    name: 'weightcache_nvme_native_read_buffer_bytes',
    help: 'NVMe read buffers the native doors hold (being read, or verified bytes waiting to be written); back to 0 once every answer is written or its client is gone',
    registers: [this.registry],
    collect: () => {
      const s = this.nativeNvmeStats?.();
      if (s) this.nativeNvmeBuffers.set(s.bufferBytes);
    },
  });

  readonly httpDoorQueued = new Gauge({
    name: 'weightcache_http_native_queued_bytes',
    help: 'Answer bytes the native HTTP door holds queued for its clients, all connections (each at most http.maxBufferedBytes plus one write)',
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s) this.httpDoorQueued.set(s.bufferedBytes);
    },
  });
  readonly httpDoorPinned = new Gauge({
    name: 'weightcache_http_native_pinned_buffers',
    help: 'JavaScript Buffers the native HTTP door references until their bytes are written (0 once every answer is written or abandoned)',
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (s) this.httpDoorPinned.set(s.pinnedBuffers);
    },
  });

  readonly httpDoorAccessDropped = new Counter({
    name: 'weightcache_http_native_access_dropped_total',
    help: 'Access-log lines of fast-path answers dropped because 10,000 were already waiting for JavaScript (an I/O thread never waits for the log)',
    registers: [this.registry],
    collect: () => {
      const s = this.httpDoorStats?.();
      if (!s) return;
      this.httpDoorAccessDropped.reset();
      if (s.accessDropped > 0) this.httpDoorAccessDropped.inc(s.accessDropped);
    },
  });

  /** The native RESP door's counters, read at scrape time (set by src/resp/server.ts with resp.door: native). */
  respDoorStats: (() => NativeRespDoorStats | undefined) | undefined;
  readonly respFastPath = new Counter({
    name: 'weightcache_resp_fastpath_commands_total',
    help: 'Commands the native RESP door looked at for its fast path (GET, GETRANGE, STRLEN, EXISTS, MGET), by result: hit (answered on an I/O thread), or why it went to JavaScript: no_binding, miss (a chunk in neither DRAM nor NVMe, or an NVMe read that failed), unauthorised, busy (an earlier command still in JavaScript), other',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.respDoorStats?.();
      if (s?.fastHits === undefined) return;
      this.respFastPath.reset();
      const set = (result: string, v: number | undefined) => {
        if (v) this.respFastPath.inc({ result }, v);
      };
      set('hit', s.fastHits);
      set('no_binding', s.fastNoBinding);
      set('miss', s.fastMisses);
      set('unauthorised', s.fastUnauthorised);
      set('busy', s.fastBusy);
      set('other', s.fastOther);
    },
  });

  readonly respDoorAccessDropped = new Counter({
    name: 'weightcache_resp_native_access_dropped_total',
    help: 'Access-log lines of RESP fast-path replies dropped because 10,000 were already waiting for JavaScript (an I/O thread never waits for the log)',
    registers: [this.registry],
    collect: () => {
      const s = this.respDoorStats?.();
      if (!s) return;
      this.respDoorAccessDropped.reset();
      if (s.accessDropped > 0) this.respDoorAccessDropped.inc(s.accessDropped);
    },
  });

  /** The native fast path's counters already added to requests and servedBytes. */
  private fastSeen: {
    hits: number;
    notModified: number;
    by: Record<Source, { bytes: number; reads: number }>;
  } = {
    hits: 0,
    notModified: 0,
    by: {
      dram: { bytes: 0, reads: 0 },
      nvme: { bytes: 0, reads: 0 },
      origin: { bytes: 0, reads: 0 },
      peer: { bytes: 0, reads: 0 },
    },
  };

  /**
   * Hits the native door answered without JavaScript count in the same
   * request and served-bytes metrics as every other answer: what the I/O
   * threads counted since the last scrape is added here, at scrape time.
   */
  private syncNative(): void {
    this.syncFastPath();
    for (const sync of this.nativeCounts) sync();
  }

  private syncFastPath(): void {
    const s = this.httpDoorStats?.();
    if (s?.fastHits === undefined) return;
    const hits = s.fastHits;
    const notModified = s.fastNotModified ?? 0;
    const bytes = s.fastBodyBytes ?? 0;
    const seen = this.fastSeen;
    const ok = hits - notModified - (seen.hits - seen.notModified);
    if (ok > 0) this.requests.inc({ protocol: 'http', result: 'ok' }, ok);
    if (notModified > seen.notModified)
      this.requests.inc({ protocol: 'http', result: 'not_modified' }, notModified - seen.notModified);
    // Bytes and object GETs with a body by the tier they came from, as the JavaScript door counts
    // them: a resumed miss (its fill fetched the first chunk) as the fill's source.
    const fillHits = s.fastFillSourceHits ?? [0, 0, 0];
    const fillBytes = s.fastFillSourceBytes ?? [0, 0, 0];
    const nvmeBytes = s.fastNvmeBodyBytes ?? 0;
    const nvmeHits = s.fastNvmeHits ?? 0;
    const [oh = 0, ph = 0, nh = 0] = fillHits;
    const [ob = 0, pb = 0, nb = 0] = fillBytes;
    const now: Record<Source, { bytes: number; reads: number }> = {
      dram: {
        bytes: bytes - nvmeBytes - ob - pb - nb,
        reads: (s.fastBodyHits ?? 0) - nvmeHits - oh - ph - nh,
      },
      nvme: { bytes: nvmeBytes + nb, reads: nvmeHits + nh },
      origin: { bytes: ob, reads: oh },
      peer: { bytes: pb, reads: ph },
    };
    for (const source of ['dram', 'nvme', 'origin', 'peer'] as const) {
      const n = now[source];
      const was = seen.by[source];
      if (n.bytes > was.bytes) this.servedBytes.inc({ source }, n.bytes - was.bytes);
      if (n.reads > was.reads) this.objectReads.inc({ door: 'objects', source }, n.reads - was.reads);
    }
    this.fastSeen = { hits, notModified, by: now };
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.requestDuration.native.set('http', () => this.httpDoorStats?.()?.fastDurations);
    if (opts.defaultMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: 'weightcache_process_' });
  }

  /** Sum of a counter's values across all label sets (tests and status). */
  async total(metric: Counter<string>, labels?: Record<string, string>): Promise<number> {
    const got = await metric.get();
    return got.values
      .filter((v) => !labels || Object.entries(labels).every(([k, want]) => v.labels[k] === want))
      .reduce((sum, v) => sum + v.value, 0);
  }
}

type Exported = Awaited<ReturnType<Histogram<'protocol'>['get']>>;
type ExportedValue = Exported['values'][number] & { sharedLabels?: Record<string, string | number> };
const histogramBase = Histogram.prototype as unknown as {
  getForPromString(this: Histogram<'protocol'>): Promise<Exported>;
};

/** Durations timed on native I/O threads: counts per bucket of LATENCY_BUCKETS (not cumulative; the last +Inf). */
type NativeDurations = { buckets: number[]; sumSeconds: number; count: number };

/**
 * weightcache_request_duration_seconds: what JavaScript timed, plus (in the
 * protocol="http" and protocol="resp" series) the native doors' fast-path
 * answers, timed on their I/O threads in the same buckets and summed over
 * them at scrape time.
 */
class RequestDurationHistogram extends Histogram<'protocol'> {
  /** Per protocol: the native door's durations (read at scrape time; undefined: none, or stopped). */
  readonly native = new Map<Protocol, () => NativeDurations | undefined>();

  /** What the registry renders (get() goes through it too). */
  async getForPromString(): Promise<Exported> {
    const data = await histogramBase.getForPromString.call(this);
    for (const [protocol, durations] of this.native) {
      const n = durations();
      if (n && n.count > 0) addNative(data, protocol, n);
    }
    return data;
  }
}

/** Adds `n` to the `protocol` series of `data` (starting the series when JavaScript timed none yet). */
function addNative(data: Exported, protocol: Protocol, n: NativeDurations): void {
  const name = 'weightcache_request_duration_seconds';
  const isMine = (v: ExportedValue) => (v.sharedLabels?.protocol ?? v.labels.protocol) === protocol;
  const values = data.values as ExportedValue[];
  let mine = values.filter(isMine);
  if (mine.length === 0) {
    // No request JavaScript timed yet: the series starts from the native counts alone.
    const labels = { protocol };
    const zero = (metricName: string, extra: Record<string, string | number>): ExportedValue =>
      ({ labels: extra, sharedLabels: labels, value: 0, metricName }) as unknown as ExportedValue;
    mine = [
      ...LATENCY_BUCKETS.map((le) => zero(`${name}_bucket`, { le })),
      zero(`${name}_bucket`, { le: '+Inf' }),
      zero(`${name}_sum`, {}),
      zero(`${name}_count`, {}),
    ];
    values.push(...mine);
  }
  let cumulative = 0;
  const byBound = new Map<string, number>();
  LATENCY_BUCKETS.forEach((le, i) => {
    cumulative += n.buckets[i] ?? 0;
    byBound.set(String(le), cumulative);
  });
  byBound.set('+Inf', n.count);
  for (const v of mine) {
    if (v.metricName === `${name}_bucket`)
      v.value += byBound.get(String((v.labels as Record<string, string | number>).le)) ?? 0;
    else if (v.metricName === `${name}_sum`) v.value += n.sumSeconds;
    else if (v.metricName === `${name}_count`) v.value += n.count;
  }
}
