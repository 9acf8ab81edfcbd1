/**
 * `POST /v1/prefetch {container, prefix}` warms every chunk of every file
 * under a prefix through the read path (so fills coalesce with concurrent
 * reads and land in DRAM and NVMe like any read), as a background job a
 * rollout tool polls with `GET /v1/prefetch/{id}`.
 *
 * Limits: at most MAX_FILES files, at most the cache's capacity in bytes (a
 * larger prefetch would evict itself), MAX_RUNNING jobs at once, one job per
 * (container, prefix) — a second POST joins it —, CONCURRENCY chunks in
 * flight per job, and the last MAX_FINISHED finished jobs kept for polling.
 */
import { randomBytes } from 'node:crypto';
import type { Hono } from 'hono';
import { chunkCount, chunkExtent } from '../chunk/name.js';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import { validateContainer, validateKey } from '../origin/names.js';
import type { ObjectInfo, Origin } from '../origin/origin.js';
import type { ReadPath } from '../read/read-path.js';
import type { HttpEnv } from './objects.js';

export const PREFETCH_MAX_FILES = 10_000;
export const PREFETCH_MAX_RUNNING = 4;
export const PREFETCH_MAX_FINISHED = 64;
export const PREFETCH_CONCURRENCY = 8;
const MAX_BODY_BYTES = 16 * 1024;

/**
 * Warms chunk `index` of one version. The one call a cluster redirects to the
 * chunk's owner; on a single node it is a read through the local read path.
 */
export type WarmChunk = (info: ObjectInfo, index: number, signal: AbortSignal) => Promise<void>;

export interface PrefetchDeps {
  readonly readPath: ReadPath;
  readonly origin: Origin;
  readonly log: Logger;
  /** Bytes DRAM + NVMe can hold now. */
  readonly capacityBytes: () => number;
  readonly warmChunk?: WarmChunk;
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
  error?: { code: string; message: string };
  readonly startedAt: Date;
  finishedAt?: Date;
}

export class PrefetchJobs {
  private readonly jobs = new Map<string, PrefetchJob>();
  /** Running (or listing) jobs by container + prefix: a second request joins. */
  private readonly running = new Map<string, Promise<PrefetchJob>>();
  private readonly finished: string[] = [];
  /** A job's listing, from its creation until its run takes it. */
  private readonly listed = new Map<string, ObjectInfo[]>();
  private readonly warm: WarmChunk;

  constructor(private readonly d: PrefetchDeps) {
    this.warm =
      d.warmChunk ??
      (async (info, index, signal) => {
        await d.readPath.chunk(info, index, signal);
      });
  }

  get(id: string): PrefetchJob | undefined {
    return this.jobs.get(id);
  }

  /** Starts a job, or returns the running one for the same prefix (`joined`). */
  async start(container: string, prefix: string): Promise<{ job: PrefetchJob; joined: boolean }> {
    const key = JSON.stringify([container, prefix]);
    const existing = this.running.get(key);
    if (existing) return { job: await existing, joined: true };
    if (this.running.size >= PREFETCH_MAX_RUNNING) {
      throw new CacheError('OVERLOADED', `${PREFETCH_MAX_RUNNING} prefetch jobs are running; retry later`);
    }
    const starting = this.create(container, prefix);
    this.running.set(key, starting);
    let job: PrefetchJob;
    try {
      job = await starting;
    } catch (err) {
      this.running.delete(key);
      throw err;
    }
    void this.run(job).finally(() => {
      this.running.delete(key);
      this.finished.push(job.id);
      while (this.finished.length > PREFETCH_MAX_FINISHED) this.jobs.delete(this.finished.shift()!);
    });
    return { job, joined: false };
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
  private async run(job: PrefetchJob): Promise<void> {
    const files = this.listed.get(job.id)!;
    this.listed.delete(job.id);
    const chunkSize = this.d.readPath.chunkSize;
    const width = this.d.concurrency ?? PREFETCH_CONCURRENCY;
    const ac = new AbortController();
    const infos: ObjectInfo[] = new Array(files.length);
    const results = await pool(width, files.length, ac, async (f) => {
      infos[f] = await this.d.readPath.resolve({ container: job.container, key: files[f]!.key }, ac.signal);
    }).then(async (resolved) => {
      if (resolved.some((r) => r.status === 'rejected')) return resolved;
      const chunks: Array<{ f: number; index: number }> = [];
      const left = infos.map((info) => chunkCount(info.size, chunkSize));
      job.bytesTotal = infos.reduce((n, info) => n + info.size, 0);
      job.filesDone = left.filter((n) => n === 0).length;
      for (let f = 0; f < files.length; f++) {
        for (let index = 0; index < left[f]!; index++) chunks.push({ f, index });
      }
      return pool(width, chunks.length, ac, async (i) => {
        const { f, index } = chunks[i]!;
        const info = infos[f]!;
        await this.warm(info, index, ac.signal);
        job.bytesDone += chunkExtent(info.size, chunkSize, index).length;
        if (--left[f]! === 0) job.filesDone++;
      });
    });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    job.finishedAt = new Date();
    if (failed) {
      const e = CacheError.from(failed.reason);
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

export function prefetchRoutes(app: Hono<HttpEnv>, d: PrefetchDeps): PrefetchJobs {
  const jobs = new PrefetchJobs(d);
  app.post('/v1/prefetch', async (c) => {
    const { container, prefix } = parseBody(await readBody(c.req.raw));
    const { job, joined } = await jobs.start(container, prefix);
    return c.json({ id: job.id, files: job.files, bytes: job.bytesTotal, joined }, 202);
  });
  app.get('/v1/prefetch/:id', (c) => {
    const job = jobs.get(c.req.param('id'));
    if (!job) throw new CacheError('NOT_FOUND', `no prefetch job ${JSON.stringify(c.req.param('id'))}`);
    return c.json({
      id: job.id,
      container: job.container,
      prefix: job.prefix,
      state: job.state,
      files: job.files,
      filesDone: job.filesDone,
      bytesDone: job.bytesDone,
      bytesTotal: job.bytesTotal,
      startedAt: job.startedAt.toISOString(),
      ...(job.finishedAt ? { finishedAt: job.finishedAt.toISOString() } : {}),
      ...(job.error ? { error: job.error } : {}),
    });
  });
  return jobs;
}

async function readBody(req: Request): Promise<string> {
  if (!req.body) return '';
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new CacheError('TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseBody(text: string): { container: string; prefix: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CacheError('BAD_REQUEST', 'body must be JSON: {"container": "...", "prefix": "..."}');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new CacheError('BAD_REQUEST', 'body must be a JSON object {"container", "prefix"}');
  }
  const { container, prefix } = body as Record<string, unknown>;
  if (typeof container !== 'string') throw new CacheError('BAD_REQUEST', '"container" must be a string');
  if (typeof prefix !== 'string') throw new CacheError('BAD_REQUEST', '"prefix" must be a string');
  validateContainer(container);
  validateKey(prefix, { allowEmpty: true, what: 'prefix' });
  return { container, prefix };
}

/** Runs fn(0..count-1), `width` at a time; the first failure aborts `ac` and stops the rest. */
async function pool(
  width: number,
  count: number,
  ac: AbortController,
  fn: (i: number) => Promise<void>,
): Promise<PromiseSettledResult<void>[]> {
  let next = 0;
  const worker = async () => {
    while (next < count && !ac.signal.aborted) await fn(next++);
  };
  return Promise.allSettled(
    Array.from({ length: Math.min(width, count) }, () =>
      worker().catch((err) => {
        ac.abort(err);
        throw err;
      }),
    ),
  );
}
