/**
 * The NVMe tier's options (from `cache.nvme.*`, docs/configuration.md), their
 * validation, and the reader they configure, logged once at open.
 */
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';
import { attachNvmeMetrics } from './nvme-metrics.js';
import { NvmeReader } from './nvme-reader.js';

/** The two pino methods the tier uses; a pino Logger fits. */
export interface TierLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface NvmeTierOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly metrics?: Metrics;
  readonly logger?: TierLogger;
  /** Puts past this many in flight are dropped, not queued (each holds a chunk in memory). Default 64. */
  readonly maxPendingWrites?: number;
  /** After a failed write, no write is tried for this long. Default 30 s. */
  readonly retryAfterMs?: number;
  /** fsync each chunk before its rename. Default false: see writeChunkFileAtomic(). */
  readonly fsync?: boolean;
  /** How long close() waits for in-flight writes. Default 10 s. */
  readonly closeTimeoutMs?: number;
  /** Reads in flight to the device at once (cache.nvme.queueDepth). Default 32. */
  readonly queueDepth?: number;
  /** Chunk files kept open with their block CRC tables (cache.nvme.openFiles). Default 256. */
  readonly openFiles?: number;
  /** Read with O_DIRECT, bypassing the page cache (cache.nvme.directIo). Default true. */
  readonly directIo?: boolean;
  /**
   * 'auto': io_uring, or the thread pool where io_uring is unavailable;
   * 'threads': the pool always (cache.nvme.io). The environment variable
   * WEIGHTCACHE_NVME_IO=threads forces the pool too. Default 'auto'.
   */
  readonly io?: 'auto' | 'threads';
  /** Threads of the fallback pool (cache.nvme.ioThreads). Default 4. */
  readonly ioThreads?: number;
  /** Bytes per CRC32C block in files this tier writes (benchmarks). Default 4096. */
  readonly blockBytes?: number;
  /** Clock seam for the degraded-mode backoff (tests). */
  readonly now?: () => number;
}

/** Throws CONFIG_INVALID naming the first bad option. */
export function validateNvmeOptions(opts: NvmeTierOptions): void {
  if (typeof opts.dir !== 'string' || opts.dir === '')
    throw new CacheError('CONFIG_INVALID', 'nvme tier: dir must be a non-empty path');
  if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0)
    throw new CacheError('CONFIG_INVALID', `nvme tier: maxBytes must be a byte count, got ${opts.maxBytes}`);
  if (
    opts.maxPendingWrites !== undefined &&
    !(Number.isSafeInteger(opts.maxPendingWrites) && opts.maxPendingWrites >= 1)
  )
    throw new CacheError(
      'CONFIG_INVALID',
      `nvme tier: maxPendingWrites must be a positive integer, got ${opts.maxPendingWrites}`,
    );
  for (const k of ['queueDepth', 'openFiles', 'ioThreads'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1 && v <= 65_536))
      throw new CacheError('CONFIG_INVALID', `nvme tier: ${k} must be an integer 1..65536, got ${v}`);
  }
}

/**
 * The tier's reader, its metrics attached, and one log line saying how
 * reads are done: io_uring, or the thread pool and why.
 */
export function openReader(opts: NvmeTierOptions): { reader: NvmeReader; detach: () => void } {
  const forced = opts.io === 'threads' || process.env.WEIGHTCACHE_NVME_IO === 'threads';
  const threads = opts.ioThreads ?? 4;
  const reader = new NvmeReader({
    queueDepth: opts.queueDepth ?? 32,
    openFiles: opts.openFiles ?? 256,
    direct: opts.directIo ?? true,
    forceThreads: forced,
    threads,
  });
  const detach = opts.metrics ? attachNvmeMetrics(opts.metrics, () => reader.stats()) : () => {};
  const s = reader.stats();
  if (s.backend === 'io_uring')
    opts.logger?.info({ queueDepth: s.queueDepth, directIo: s.direct }, 'nvme tier: reads through io_uring');
  else if (forced)
    opts.logger?.info({ threads }, 'nvme tier: reads through a thread pool (cache.nvme.io: threads)');
  else
    opts.logger?.warn(
      { reason: s.fallbackReason, threads },
      'nvme tier: io_uring unavailable, reads go through a thread pool instead',
    );
  return { reader, detach };
}
