/**
 * A local directory as origin: `{root}/{container}/{key}`. The version of a
 * file is derived from (inode, size, mtime in ns, ctime in ns): an atomic
 * replace (write elsewhere + rename) gives a new inode, an in-place rewrite a
 * new ctime. mtime alone is not enough: `rsync -t`, `cp -p`, tar and
 * `os.utime` set it back after writing, so a rewritten file can carry its old
 * mtime, while ctime is set by the kernel on every write, truncate and
 * utime and cannot be set by a caller.
 * Reads check the version on the open file before and after reading, so bytes
 * of a file that changed under the read are never returned. A chunk read is
 * one job on native threads of the origin's own (src/fill/file-jobs.ts).
 */
import type { BigIntStats } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { CacheError } from '../errors/cache-error.js';
import { FileJobs, type FileStamp } from '../fill/file-jobs.js';
import { formatName, validateContainer, validateKey, validateName } from './names.js';
import type {
  ChunkReadOptions,
  ListOptions,
  ObjectInfo,
  ObjectName,
  ObjectVersion,
  Origin,
  ReadOptions,
} from './origin.js';
import { checkReadRange } from './read-range.js';

export const FS_LIST_LIMIT = 100_000;
/**
 * Threads reading chunks from the origin's files (addon/src/fill/): enough
 * to keep a local disk busy with origin.maxConcurrency reads in flight.
 */
export const FS_READ_THREADS = 8;
/** Chunk reads waiting for one of those threads before a read is refused (OVERLOADED). */
export const FS_READ_QUEUED = 1024;

export interface FsOriginOptions {
  readonly root: string;
  /**
   * Read chunks with O_DIRECT where the filesystem allows it (origin.fs.directIo):
   * the disk writes straight into chunk memory, no copy through the page
   * cache. Default true.
   */
  readonly directIo?: boolean;
}

export class FsOrigin implements Origin {
  readonly kind = 'fs';
  readonly id: string;
  private readonly root: string;
  private realRoot: Promise<string> | undefined;
  private reads: FileJobs | undefined;
  private readonly directIo: boolean;

  constructor(opts: FsOriginOptions) {
    this.root = resolve(opts.root);
    this.directIo = opts.directIo ?? true;
    this.id = `fs:${this.root}`;
  }

  async stat(name: ObjectName, opts?: ReadOptions): Promise<ObjectInfo> {
    opts?.signal?.throwIfAborted();
    const path = await this.pathOf(name);
    let st: BigIntStats;
    try {
      st = await stat(path, { bigint: true });
    } catch (err) {
      throw fsError(err, name);
    }
    if (!st.isFile()) throw new CacheError('NOT_FOUND', `${formatName(name)} is not a file`);
    return infoOf(name, st);
  }

  async revalidate(known: ObjectInfo, opts?: ReadOptions): Promise<ObjectInfo> {
    const now = await this.stat(known, opts);
    return now.etag === known.etag && now.size === known.size ? known : now;
  }

  async read(
    name: ObjectName,
    version: ObjectVersion,
    offset: number,
    length: number,
    opts?: ChunkReadOptions,
  ): Promise<Buffer> {
    checkReadRange(name, version, offset, length, opts);
    opts?.signal?.throwIfAborted();
    const { root, path } = await this.joinedPath(name);
    const buf = opts?.into ?? Buffer.allocUnsafe(length);
    // One job on the origin's own threads: realpath (still inside the root?),
    // open, fstat, pread (O_DIRECT for the 4 KiB-aligned part, if directIo), fstat, close.
    this.reads ??= new FileJobs(`fs origin reads (${this.root})`, {
      threads: FS_READ_THREADS,
      maxQueued: FS_READ_QUEUED,
    });
    const r = await this.reads.readVersioned(root, path, offset, length, buf, this.directIo);
    // A job runs to its end (one chunk, bounded): an abort is seen when it returns.
    opts?.signal?.throwIfAborted();
    if (r.stage === 'outside') {
      throw new CacheError('BAD_KEY', `${formatName(name)} links outside the origin root`);
    }
    if (r.stage !== 'done') {
      // Gone since the version was resolved: the version is what vanished.
      const e = fsError(
        Object.assign(new Error(`${r.stage}: ${r.code ?? 'failed'}`), { code: r.code }),
        name,
      );
      throw e.code === 'NOT_FOUND' ? versionGone(name, version) : e;
    }
    // The version on the open file before and after reading: a rename over the
    // path cannot hide a write to the inode we read from, and bytes of a file
    // rewritten under the read are never returned.
    const expected = (st: FileStamp) => etagOf(st) === version.etag && Number(st.size) === version.size;
    if (!expected(r.before) || r.bytes < length || !expected(r.after)) throw versionGone(name, version);
    return buf;
  }

  async *list(container: string, prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    validateContainer(container);
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
    const limit = Math.min(opts?.limit ?? FS_LIST_LIMIT, FS_LIST_LIMIT);
    const base = resolve(this.root, container);
    const keys: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let handle: Awaited<ReturnType<typeof opendir>>;
      try {
        handle = await opendir(dir);
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
        throw fsError(err, { container, key: rel });
      }
      for await (const ent of handle) {
        const key = rel ? `${rel}/${ent.name}` : ent.name;
        // Only descend where the prefix can still match.
        if (!(key.startsWith(prefix) || prefix.startsWith(`${key}/`))) continue;
        if (ent.isDirectory()) await walk(`${dir}${sep}${ent.name}`, key);
        else if (ent.isFile() || ent.isSymbolicLink()) keys.push(key);
        if (keys.length > FS_LIST_LIMIT) {
          throw new CacheError(
            'TOO_LARGE',
            `listing ${container}/${prefix} exceeds ${FS_LIST_LIMIT} objects`,
          );
        }
      }
    };
    await walk(base, '');
    keys.sort();
    let emitted = 0;
    for (const key of keys) {
      if (emitted >= limit) return;
      opts?.signal?.throwIfAborted();
      try {
        yield await this.stat({ container, key });
        emitted++;
      } catch (err) {
        // Vanished between walk and stat, a directory symlink, or a link leading out of the root.
        if (CacheError.is(err, 'NOT_FOUND') || CacheError.is(err, 'BAD_KEY')) continue;
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    this.reads?.close();
    this.reads = undefined;
  }

  /** Absolute path of a name, proven to lie inside the root even through symlinks. */
  private async pathOf(name: ObjectName): Promise<string> {
    const { root, path } = await this.joinedPath(name);
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      throw fsError(err, name);
    }
    if (!real.startsWith(root + sep)) {
      throw new CacheError('BAD_KEY', `${formatName(name)} links outside the origin root`);
    }
    return real;
  }

  /** The resolved root, and the name's path under it before symlinks are followed. */
  private async joinedPath(name: ObjectName): Promise<{ root: string; path: string }> {
    validateName(name);
    this.realRoot ??= realpath(this.root).catch((err) => {
      this.realRoot = undefined;
      throw new CacheError(
        'ORIGIN_UNAVAILABLE',
        `fs origin root ${this.root} is not accessible: ${err.message}`,
        {
          cause: err,
        },
      );
    });
    const root = await this.realRoot;
    const path = resolve(root, name.container, ...name.key.split('/'));
    if (!path.startsWith(root + sep)) throw new CacheError('BAD_KEY', 'key resolves outside the origin root');
    return { root, path };
  }
}

/**
 * Everything a write changes: the inode (a replace), the size, mtime and
 * ctime in ns (an in-place rewrite, even with mtime restored). Not the device
 * number: it can change across reboots and remounts (NFS, overlayfs) without
 * the bytes changing, which would orphan every cached chunk.
 */
function etagOf(st: FileStamp): string {
  const hex = (n: bigint) => n.toString(16);
  return `${hex(st.ino)}-${hex(st.size)}-${hex(st.mtimeNs)}-${hex(st.ctimeNs)}`;
}

function infoOf(name: ObjectName, st: BigIntStats): ObjectInfo {
  return {
    container: name.container,
    key: name.key,
    etag: etagOf(st),
    size: Number(st.size),
    lastModified: new Date(Number(st.mtimeMs)),
  };
}

function versionGone(name: ObjectName, version: ObjectVersion): CacheError {
  return new CacheError(
    'VERSION_CHANGED',
    `${formatName(name)} version ${version.etag} is no longer at the origin`,
  );
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

function fsError(err: unknown, name: ObjectName): CacheError {
  const where = formatName(name);
  if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) {
    return new CacheError('NOT_FOUND', `${where} not found at the origin`, { cause: err });
  }
  if (isErrno(err, 'ELOOP') || isErrno(err, 'ENAMETOOLONG')) {
    return new CacheError('BAD_KEY', `${where}: ${(err as Error).message}`, { cause: err });
  }
  return new CacheError('ORIGIN_UNAVAILABLE', `fs origin failed on ${where}: ${(err as Error).message}`, {
    cause: err,
  });
}
