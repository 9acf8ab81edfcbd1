/**
 * The fill path's file work on native threads of its own (addon/src/fill/):
 * a versioned read of an fs origin chunk (realpath, open, fstat, pread,
 * fstat, close) or an atomic chunk-file write (open, writev, close, rename)
 * is one job run whole by one thread, not a chain of hops through libuv's
 * 4-thread pool, which everything else in the process shares. Origin reads
 * and NVMe writes each get their own FileJobs, so a burst of write-through
 * never holds a thread that a reader's origin read needs.
 *
 * At most `maxQueued` jobs wait beyond the running ones; past that a job is
 * refused at once (OVERLOADED) instead of queueing without bound.
 */
import { CacheError } from '../errors/cache-error.js';
import { binding } from '../transport/binding.js';

/** [ino, size, mtimeNs, ctimeNs] of the open file, as fstat(2) gave them. */
export interface FileStamp {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** A job's end: `stage` is 'done', or the step that failed with errno `code`. */
export type JobStage =
  | 'done'
  | 'realpath'
  | 'outside'
  | 'open'
  | 'fstat'
  | 'read'
  | 'write'
  | 'fsync'
  | 'close'
  | 'rename';

export type VersionedReadResult =
  | {
      readonly stage: 'done';
      /** Bytes read: fewer than asked when the file ended first. */
      readonly bytes: number;
      /** The open file before the first byte was read and after the last. */
      readonly before: FileStamp;
      readonly after: FileStamp;
    }
  | { readonly stage: Exclude<JobStage, 'done'>; readonly code?: string };

export interface FileJobsStats {
  readonly threads: number;
  readonly maxQueued: number;
  readonly queued: number;
  readonly running: number;
  readonly pending: number;
  /** Bytes read or written by jobs that completed, and of those, with O_DIRECT. */
  readonly bytes: number;
  readonly directBytes: number;
}

/** The addon's class behind FileJobs (addon/src/fill/fill_js.cc). */
export interface NativeFillFiles {
  readVersioned(
    id: number,
    root: string,
    path: string,
    offset: number,
    length: number,
    dest: Uint8Array,
    direct: boolean,
  ): void;
  writeAtomic(
    id: number,
    path: string,
    tmp: string,
    header: Uint8Array,
    data: Uint8Array,
    fsync: boolean,
    direct: boolean,
  ): void;
  stats(): FileJobsStats;
  close(): void;
}

export interface FillBinding {
  readonly FillFiles: new (
    options: { threads: number; maxQueued: number },
    onDone: (results: unknown[]) => void,
  ) => NativeFillFiles;
}

type Raw = { stage: JobStage; code?: string; bytes: number; before?: bigint[]; after?: bigint[] };

export class FileJobs {
  private readonly native: NativeFillFiles;
  private readonly waiting = new Map<number, (r: Raw) => void>();
  private nextId = 1;
  private closed = false;

  constructor(
    readonly what: string,
    opts: { readonly threads: number; readonly maxQueued: number },
  ) {
    this.native = new (binding().FillFiles)(opts, (results) => this.onDone(results));
  }

  /**
   * Bytes [offset, offset + length) of the file at `path` into `dest`, if the
   * file (symlinks resolved) lies inside `root`. The caller compares
   * `before` and `after` with the version it expects. With `direct`, the
   * 4 KiB-aligned part is read with O_DIRECT where the filesystem allows it
   * (straight into `dest`, no page cache), the rest buffered.
   */
  async readVersioned(
    root: string,
    path: string,
    offset: number,
    length: number,
    dest: Uint8Array,
    direct = false,
  ): Promise<VersionedReadResult> {
    const r = await this.submit((id) =>
      this.native.readVersioned(id, root, path, offset, length, dest, direct),
    );
    if (r.stage !== 'done') return { stage: r.stage, ...(r.code ? { code: r.code } : {}) };
    return { stage: 'done', bytes: r.bytes, before: stampOf(r.before!), after: stampOf(r.after!) };
  }

  /**
   * header + data to `tmp` (created, O_EXCL), fsync'ed when asked, renamed to
   * `path`. Throws an Error with the errno name in `code` (ENOSPC, EACCES,
   * EROFS, …); `tmp` is removed then, so `path` is whole or untouched. With
   * `direct`, the 4 KiB-aligned part is written with O_DIRECT where the
   * filesystem allows it, the rest buffered.
   */
  async writeAtomic(
    path: string,
    tmp: string,
    header: Uint8Array,
    data: Uint8Array,
    fsync: boolean,
    direct = false,
  ): Promise<void> {
    const r = await this.submit((id) => this.native.writeAtomic(id, path, tmp, header, data, fsync, direct));
    if (r.stage === 'done') return;
    const err = new Error(
      `${r.stage} ${r.stage === 'rename' ? `${tmp} → ${path}` : tmp}: ${r.code ?? 'failed'}`,
    );
    (err as NodeJS.ErrnoException).code = r.code;
    throw err;
  }

  stats(): FileJobsStats {
    return this.native.stats();
  }

  /** Lets the jobs already posted finish, then stops the threads; results still pending are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    for (const resolve of this.waiting.values()) resolve({ stage: 'read', code: 'ECANCELED', bytes: 0 });
    this.waiting.clear();
  }

  private submit(post: (id: number) => void): Promise<Raw> {
    if (this.closed) return Promise.reject(new CacheError('INTERNAL', `${this.what}: closed`));
    const id = this.nextId++;
    try {
      post(id);
    } catch (err) {
      if ((err as { code?: string }).code === 'EBUSY') {
        return Promise.reject(
          new CacheError(
            'OVERLOADED',
            `${this.what}: ${(err as Error).message.replace(/^FillFiles: /, '')}`,
            {
              cause: err,
            },
          ),
        );
      }
      return Promise.reject(err); // a bad argument: a bug here, not a file problem
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  private onDone(results: unknown[]): void {
    for (let i = 0; i < results.length; i += 6) {
      const id = results[i] as number;
      const resolve = this.waiting.get(id);
      if (!resolve) continue;
      this.waiting.delete(id);
      const code = results[i + 2] as string | undefined;
      resolve({
        stage: results[i + 1] as JobStage,
        ...(code ? { code } : {}),
        bytes: results[i + 3] as number,
        before: results[i + 4] as bigint[] | undefined,
        after: results[i + 5] as bigint[] | undefined,
      });
    }
  }
}

function stampOf(a: readonly bigint[]): FileStamp {
  return { ino: a[0]!, size: a[1]!, mtimeNs: a[2]!, ctimeNs: a[3]! };
}
