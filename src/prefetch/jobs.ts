/**
 * Prefetch: warm every chunk of every file under a prefix through the read
 * path (so fills coalesce with concurrent reads and land in DRAM and NVMe
 * like any read), as a background job. The one implementation below both
 * doors: HTTP starts a job and lets the caller poll it (`POST /v1/prefetch`,
 * `GET /v1/prefetch/{id}`); RESP's `WC.PREFETCH` starts or joins the same
 * job and answers when it is done.
 *
 * Limits, the same for every door: at most PREFETCH_MAX_FILES files, at most
 * the cache's capacity in bytes (a larger prefetch would evict itself),
 * PREFETCH_MAX_RUNNING jobs at once, one job per (container, prefix) — a
 * second request joins it —, PREFETCH_CONCURRENCY chunks in flight per job,
 * and the last PREFETCH_MAX_FINISHED finished jobs kept for polling. In a
 * cluster each chunk is warmed at its owner (`warmChunk`).
 */
import { randomBytes } from 'node:crypto';
import { chunkCount, chunkExtent } from '../chunk/name.js';
import { formatBytes } from '../config/units.js';
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import { settleBounded } from '../fill/pool.js';
import type { Logger } from '../log/logger.js';
import type { Source } from '../metrics/metrics.js';
import { validateContainer, validateKey } from '../origin/names.js';
import type { ObjectInfo, ObjectName, Origin } from '../origin/origin.js';

export const PREFETCH_MAX_FILES = 10_000;
export const PREFETCH_MAX_RUNNING = 4;
export const PREFETCH_MAX_FINISHED = 64;
export const PREFETCH_CONCURRENCY = 8;

/**
 * Warms chunk `index` of one version and says where it was found. The one
 * call a cluster redirects to the chunk's owner ('peer'); on a single node it
 * is a read through the local read path.
 */
export type WarmChunk = (info: ObjectInfo, index: number, signal: AbortSignal) => Promise<Source>;

export interface PrefetchDeps {
  /** The version a name means now (the read path's resolver). */
  readonly resolve: (name: ObjectName, signal: AbortSignal) => Promise<ObjectInfo>;
  readonly warmChunk: WarmChunk;
  readonly chunkSize: number;
  readonly origin: Origin;
  readonly log: Logger;
  /** Bytes the cache can hold now (DRAM + NVMe, times the members of a cluster). */
  readonly capacityBytes: () => number;
  readonly concurrency?: number;
}

export type JobState = 'running' | 'done' | 'failed';

export interface PrefetchJob {
  readonly id: string;
  readonly container: string;
  readonly prefix: string;
  state: JobState;
  readonly files: number;
  /** From the listing, then from the versions resolved (the same unless the model just changed). */
  bytesTotal: number;
  filesDone: number;
  bytesDone: number;
  /** Chunks of the versions resolved (known once they are). */
  chunks: number;
  /** Chunks warmed, by where each was found. */
  readonly found: Record<Source, number>;
  error?: { code: ErrorCode; message: string };
  readonly startedAt: Date;
  finishedAt?: Date;
}

/** Checks a prefetch target the same way for every door. */
export function validateTarget(container: string, prefix: string): { container: string; prefix: string } {
  return {
    container: validateContainer(container),
    prefix: validateKey(prefix, { allowEmpty: true, what: 'prefix' }),
  };
}

export class PrefetchJobs {
  private readonly jobs = new Map<string, PrefetchJob>();
  /** Running (or listing) jobs by container + prefix: a second request joins. */
  private readonly running = new Map<string, Promise<PrefetchJob>>();
  /** Each running job's end, for callers that wait (RESP). */
  private readonly ends = new Map<string, Promise<void>>();
  private readonly finished: string[] = [];
  /** A job's listing, from its creation until its run takes it. */
  private readonly listed = new Map<string, ObjectInfo[]>();

  constructor(private readonly d: PrefetchDeps) {}

  get(id: string): PrefetchJob | undefined {
    return this.jobs.get(id);
  }

  /** Starts a job, or returns the running one for the same prefix (`joined`). */
  async start(container: string, prefix: string): Promise<{ job: PrefetchJob; joined: boolean }> {
    const t = validateTarget(container, prefix);
    const key = JSON.stringify([t.container, t.prefix]);
    const existing = this.running.get(key);
    if (existing) return { job: await existing, joined: true };
    if (this.running.size >= PREFETCH_MAX_RUNNING) {
      throw new CacheError('OVERLOADED', `${PREFETCH_MAX_RUNNING} prefetch jobs are running; retry later`);
    }
    const starting = this.create(t.container, t.prefix);
    this.running.set(key, starting);
    let job: PrefetchJob;
    try {
      job = await starting;
    } catch (err) {
      this.running.delete(key);
      throw err;
    }
    const end = this.execute(job).finally(() => {
      this.running.delete(key);
      this.ends.delete(job.id);
      this.finished.push(job.id);
      while (this.finished.length > PREFETCH_MAX_FINISHED) this.jobs.delete(this.finished.shift()!);
    });
    this.ends.set(job.id, end);
    return { job, joined: false };
  }

  /** Starts or joins the job for a prefix and resolves when it has ended (done or failed). */
  async complete(container: string, prefix: string): Promise<PrefetchJob> {
    const { job } = await this.start(container, prefix);
    await this.ends.get(job.id);
    return job;
  }

  private async create(container: string, prefix: string): Promise<PrefetchJob> {
    const listed: ObjectInfo[] = [];
    let bytes = 0;
    for await (const o of this.d.origin.list(container, prefix, { limit: PREFETCH_MAX_FILES + 1 })) {
      if (listed.length === PREFETCH_MAX_FILES) {
        throw new CacheError(
          'TOO_LARGE',
          `more than ${PREFETCH_MAX_FILES} files under ${container}/${prefix}`,
        );
      }
      listed.push(o);
      bytes += o.size;
    }
    if (listed.length === 0) throw new CacheError('NOT_FOUND', `no files under ${container}/${prefix}`);
    const capacity = this.d.capacityBytes();
    if (bytes > capacity) {
      throw new CacheError(
        'TOO_LARGE',
        `${container}/${prefix} holds ${formatBytes(bytes)}, more than the cache's ${formatBytes(capacity)}: it would evict itself`,
      );
    }
    const job: PrefetchJob = {
      id: randomBytes(8).toString('hex'),
      container,
      prefix,
      state: 'running',
      files: listed.length,
      bytesTotal: bytes,
      filesDone: 0,
      bytesDone: 0,
      chunks: 0,
      found: { dram: 0, nvme: 0, peer: 0, origin: 0 },
      startedAt: new Date(),
    };
    this.jobs.set(job.id, job);
    this.listed.set(job.id, listed);
    return job;
  }

  /**
   * Two phases, each `concurrency` wide, the first failure stopping the job:
   * resolve every file to the version a read would get now (lease table, not
   * the listing, so the warmed chunks are the ones the next reads ask for),
   * then warm every chunk of those versions.
   */
  private async execute(job: PrefetchJob): Promise<void> {
    const files = this.listed.get(job.id)!;
    this.listed.delete(job.id);
    const chunkSize = this.d.chunkSize;
    const width = this.d.concurrency ?? PREFETCH_CONCURRENCY;
    const ac = new AbortController();
    const infos: ObjectInfo[] = new Array(files.length);
    const stopAll = { signal: ac.signal, onFirstFailure: (err: unknown) => ac.abort(err) };
    const failures = await settleBounded(
      files,
      width,
      async (file, f) => {
        infos[f] = await this.d.resolve({ container: job.container, key: file.key }, ac.signal);
      },
      stopAll,
    ).then(async (resolved) => {
      if (resolved.length > 0) return resolved;
      const chunks: Array<{ f: number; index: number }> = [];
      const left = infos.map((info) => chunkCount(info.size, chunkSize));
      job.bytesTotal = infos.reduce((n, info) => n + info.size, 0);
      job.filesDone = left.filter((n) => n === 0).length;
      for (let f = 0; f < files.length; f++) {
        for (let index = 0; index < left[f]!; index++) chunks.push({ f, index });
      }
      job.chunks = chunks.length;
      return settleBounded(
        chunks,
        width,
        async ({ f, index }) => {
          const info = infos[f]!;
          job.found[await this.d.warmChunk(info, index, ac.signal)]++;
          job.bytesDone += chunkExtent(info.size, chunkSize, index).length;
          if (--left[f]! === 0) job.filesDone++;
        },
        stopAll,
      );
    });
    const failed = failures[0];
    job.finishedAt = new Date();
    if (failed) {
      const e = CacheError.from(failed.err);
      job.state = 'failed';
      job.error = { code: e.code, message: e.message };
      this.d.log.warn({ job: job.id, code: e.code, err: e }, 'prefetch failed');
    } else {
      job.state = 'done';
      this.d.log.info(
        {
          job: job.id,
          container: job.container,
          prefix: job.prefix,
          files: job.files,
          bytes: job.bytesTotal,
        },
        'prefetch done',
      );
    }
  }
}
