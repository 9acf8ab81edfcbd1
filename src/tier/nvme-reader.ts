/**
 * Verified reads of v2 chunk files, as promises. The reading is native
 * (addon/src/nvme/chunk_reader.h): io_uring (or a small thread pool where
 * io_uring is unavailable) driven by this thread's event loop, only the 4 KiB
 * blocks a range covers read, each one checked against its CRC32C before the
 * bytes come back. The Buffer it returns is the native read buffer itself
 * (no copy), or the caller's `dest`.
 */
import { binding, type NativeReader, type NativeReaderStats } from '../transport/binding.js';

export interface NvmeReaderOptions {
  /** Reads in flight to the device at once; more wait in order. */
  readonly queueDepth: number;
  /** Open files kept with their verified headers (block CRC tables). */
  readonly openFiles: number;
  /** Read with O_DIRECT (no page cache), where the filesystem allows it. */
  readonly direct: boolean;
  /** Use the thread pool even where io_uring works. */
  readonly forceThreads: boolean;
  /** The thread pool's size, where it is used. */
  readonly threads: number;
}

/** What the index says about a file; the header must agree. */
export interface ChunkFileRef {
  readonly path: string;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly crc32c: number;
}

export type ReadOutcome =
  | { readonly ok: true; readonly data: Buffer }
  | {
      readonly ok: false;
      /**
       * missing: no such file; corrupt: damaged or not the expected chunk (drop
       * it); error: an errno (`code`); busy: too many reads pending; cancelled: closed.
       */
      readonly kind: 'missing' | 'corrupt' | 'error' | 'busy' | 'cancelled';
      readonly code?: string;
      readonly reason: string;
    };

const KINDS = ['ok', 'missing', 'corrupt', 'error', 'cancelled'] as const;

export class NvmeReader {
  private readonly native: NativeReader;
  private readonly waiting = new Map<number, (o: ReadOutcome) => void>();
  private nextId = 1;
  private closed = false;

  constructor(opts: NvmeReaderOptions) {
    this.native = new (binding().NvmeReader)(
      {
        queueDepth: opts.queueDepth,
        openFiles: opts.openFiles,
        direct: opts.direct,
        forceThreads: opts.forceThreads,
        threads: opts.threads,
      },
      (results) => this.onDone(results),
    );
  }

  /** Bytes [offset, offset + length) of the chunk in `file`, whose header must name `key`. */
  read(
    file: ChunkFileRef,
    key: string,
    offset: number,
    length: number,
    dest?: Uint8Array,
  ): Promise<ReadOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, kind: 'cancelled', reason: 'reader closed' });
    const id = this.nextId++;
    try {
      this.native.read(
        id,
        file.path,
        key,
        file.dataOffset,
        file.dataLength,
        file.crc32c >>> 0,
        offset,
        length,
        dest,
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'EBUSY')
        return Promise.resolve({ ok: false, kind: 'busy', code: 'EBUSY', reason: String(err) });
      throw err; // a bad argument: a bug here, not a device problem
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  /** Closes the file kept open for `path` (before it is unlinked, so its space is freed). */
  forget(path: string): void {
    if (!this.closed) this.native.forget(path);
  }

  stats(): NativeReaderStats {
    return this.native.stats();
  }

  get pending(): number {
    return this.waiting.size;
  }

  /** Reads still pending resolve as cancelled; the ring, threads and open files are released. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    for (const resolve of this.waiting.values())
      resolve({ ok: false, kind: 'cancelled', reason: 'reader closed' });
    this.waiting.clear();
  }

  private onDone(results: unknown[]): void {
    for (let i = 0; i < results.length; i += 6) {
      const id = results[i] as number;
      const resolve = this.waiting.get(id);
      if (!resolve) continue;
      this.waiting.delete(id);
      const kind = KINDS[results[i + 1] as number] ?? 'error';
      if (kind === 'ok') {
        resolve({ ok: true, data: results[i + 2] as Buffer });
        continue;
      }
      const code = results[i + 4] as string | undefined;
      resolve({ ok: false, kind, ...(code ? { code } : {}), reason: (results[i + 5] as string) ?? kind });
    }
  }
}
