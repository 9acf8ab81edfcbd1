/**
 * The read-only FUSE mount (docs/mount.md): a door like the others. The
 * native side (addon/src/fuse/) speaks the kernel protocol on worker threads
 * and hands LOOKUP, GETATTR, READDIR, READLINK, OPEN and READ here; this
 * file answers them from the namespace (tree.ts) and the one read path, and
 * translates failures to errno (errno.ts). A request not answered within
 * mount.requestTimeout is answered EIO by the native side.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { Listings } from '../read/listings.js';
import type { ReadPath } from '../read/read-path.js';
import { binding } from '../transport/binding.js';
import type { FuseRequest, FuseStats } from './binding.js';
import { EBADF, EIO, EMFILE, errnoOf } from './errno.js';
import type { Resolve } from './lease-keeper.js';
import { describe, type Inode, Tree } from './tree.js';

/** How long a new mount may take to finish FUSE_INIT before its readahead window is set anyway. */
const INIT_WAIT_MS = 2000;
/** Bytes per READ (max_read): the kernel's largest with max_pages = 256. */
const MAX_READ = 1 << 20;

export interface MountDeps {
  readonly config: NonNullable<Config['mount']>;
  readonly readPath: ReadPath;
  readonly listings: Listings;
  /** Name → version by the leases (the read path's resolve): path walks keep leases on current snapshots. */
  readonly resolve?: Resolve;
  /**
   * The DRAM tier's native store, the chunk size and where served bytes are
   * counted: READs whose chunks are all in DRAM are then answered by the FUSE
   * workers themselves (docs/mount.md, "Performance notes"); the rest by the read path.
   */
  readonly native?: { readonly store: unknown; readonly chunkSize: number; readonly metrics: Metrics };
  readonly log: Logger;
}

export interface RunningMount {
  readonly path: string;
  /**
   * An invalidation of container/prefix (or a name) went through this process, or a
   * home revoked this process's lease on a name: flip the symlinks now.
   */
  invalidated(container: string, prefix: string): void;
  stats(): FuseStats & { inodes: number; openFiles: number };
  /** Unmounts (lazily: open files stay readable until closed or this process exits). */
  close(): Promise<void>;
}

interface OpenFile {
  readonly info: ObjectInfo;
  readonly what: string;
}

export async function startMount(d: MountDeps): Promise<RunningMount> {
  const c = d.config;
  const path = resolve(c.path);
  const log = d.log.child({ part: 'mount', path });
  await prepareMountpoint(path, log);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const tree = new Tree({
    containers: c.containers,
    modelDepth: c.modelDepth,
    listings: d.listings,
    listIntervalMs: c.listInterval,
    resolve: d.resolve,
    uid,
    gid,
  });
  const files = new Map<number, OpenFile>();
  const native = d.native;
  let nextFh = 1;
  const b = binding();
  let id = 0;

  const answer = (r: FuseRequest, run: (signal: AbortSignal) => Promise<boolean | undefined>): void => {
    // The native side answers EIO at the same deadline; this stops the work behind it.
    const signal = AbortSignal.timeout(c.requestTimeout);
    run(signal).catch((err: unknown) => {
      const errno = errnoOf(err);
      if (errno === EIO) {
        const e = CacheError.from(err);
        log.warn(
          { op: r.op, file: target(r), code: e.code, err: e.message },
          `mount ${r.op} failed: ${e.message}`,
        );
      }
      b.fuseReplyError(id, r.unique, errno);
    });
  };
  const target = (r: FuseRequest): string => {
    if (r.op === 'read') return files.get(r.fh)?.what ?? `handle ${r.fh}`;
    const ino = tree.get(r.nodeid);
    const at = ino ? describe(ino.node) : `inode ${r.nodeid}`;
    return r.op === 'lookup' ? `${at} ${r.name}` : at;
  };
  const entry = (r: FuseRequest, ino: Inode): boolean => {
    const t = tree.timeoutMs(ino);
    const ok = b.fuseReplyEntry(id, r.unique, tree.attr(ino), t, t);
    if (!ok) tree.unref(ino); // timed out: the kernel never got this lookup
    return ok;
  };

  // Returns what it started only so each case is one statement; nothing awaits it.
  const onRequest = (r: FuseRequest): unknown => {
    switch (r.op) {
      case 'lookup':
        return answer(r, async (s) => entry(r, await tree.lookup(r.nodeid, r.name, s)));
      case 'getattr':
        return answer(r, async () => {
          const ino = tree.get(r.nodeid);
          if (!ino) throw new CacheError('NOT_FOUND', `inode ${r.nodeid} is not known`);
          return b.fuseReplyAttr(id, r.unique, tree.attr(ino), tree.timeoutMs(ino));
        });
      case 'readdir':
        return answer(r, async (s) => {
          const all = await tree.readdir(r.nodeid, s);
          return b.fuseReplyDirents(id, r.unique, r.offset, r.size, all.slice(r.offset * 3));
        });
      case 'readlink':
        return answer(r, async (s) =>
          b.fuseReplyData(id, r.unique, [Buffer.from(await tree.readlink(r.nodeid, s))]),
        );
      case 'open':
        return answer(r, async () => {
          const ino = tree.get(r.nodeid);
          if (ino?.node.kind !== 'file') throw new CacheError('NOT_FOUND', `inode ${r.nodeid} is not a file`);
          if (files.size >= c.maxOpenFiles) {
            log.warn(
              { file: describe(ino.node), limit: c.maxOpenFiles },
              'mount.maxOpenFiles reached: EMFILE',
            );
            b.fuseReplyError(id, r.unique, EMFILE);
            return;
          }
          const fh = nextFh++;
          const info = ino.node.info;
          files.set(fh, { info, what: describe(ino.node) });
          if (native) b.fuseBindFile(id, fh, d.readPath.objectIdOf(info), info.size, native.chunkSize);
          // Each inode is one version: pages cached by an earlier open stay valid (KEEP_CACHE).
          const ok = b.fuseReplyOpen(id, r.unique, fh, true);
          if (!ok) {
            files.delete(fh);
            if (native) b.fuseUnbindFile(id, fh);
          }
          return ok;
        });
      case 'read':
        return answer(r, async (s) => {
          const f = files.get(r.fh);
          if (!f) {
            b.fuseReplyError(id, r.unique, EBADF);
            return;
          }
          const end = Math.min(r.offset + r.size, f.info.size) - 1;
          const slices: Buffer[] = [];
          // The one read path, pinned to the open file's version: bytes of that version or an error.
          for await (const slice of d.readPath.read(f.info, r.offset, end, s)) slices.push(slice.data);
          return b.fuseReplyData(id, r.unique, slices);
        });
      case 'release':
        files.delete(r.fh);
        return;
      case 'forget':
        for (let i = 0; i + 1 < r.forgets.length; i += 2) tree.forget(r.forgets[i]!, r.forgets[i + 1]!);
        return;
    }
  };

  try {
    id = b.fuseMount(
      path,
      {
        threads: c.threads,
        maxRead: MAX_READ,
        maxBackground: c.maxBackground,
        timeoutMs: c.requestTimeout,
        maxPending: c.maxPending,
        allowOther: c.allowOther,
        uid,
        gid,
        store: native?.store,
      },
      onRequest,
    );
  } catch (err) {
    throw new CacheError(
      'CONFIG_INVALID',
      `mount.path ${path}: ${(err as Error).message} (mounting needs /dev/fuse and CAP_SYS_ADMIN; see docs/mount.md)`,
      { cause: err },
    );
  }
  // The kernel applies FUSE_INIT's answer to the readahead window when it arrives: set ours after it.
  for (const end = Date.now() + INIT_WAIT_MS; b.fuseStats(id).protocolMinor === 0 && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 5));
  setReadAhead(path, c.readAhead, log);
  // Bytes the workers served from DRAM count where the read path's do, before each scrape.
  let counted = 0;
  const countServed = () => {
    const now = b.fuseStats(id).fastBytes;
    native?.metrics.servedBytes.inc({ source: 'dram' }, now - counted);
    counted = now;
  };
  native?.metrics.nativeCounts.add(countServed);
  log.info({ containers: c.containers, modelDepth: c.modelDepth, threads: c.threads }, 'mounted');
  let closed = false;
  return {
    path,
    invalidated: (container, prefix) => tree.invalidated(container, prefix),
    stats: () => ({ ...b.fuseStats(id), inodes: tree.size, openFiles: files.size }),
    close: async () => {
      if (closed) return;
      closed = true;
      countServed();
      native?.metrics.nativeCounts.delete(countServed);
      b.fuseUnmount(id);
      log.info('unmounted');
    },
  };
}

/**
 * Makes `path` ready to mount on: creates it, and replaces a stale mount a
 * crashed process left (every access fails ENOTCONN). A live mount is refused.
 */
async function prepareMountpoint(path: string, log: Logger): Promise<void> {
  const existing = mountsAt(path);
  if (existing) {
    let stale = false;
    try {
      // Not stat: the kernel answers that from cached attributes even after the connection died.
      // Opening a directory always asks the filesystem.
      readdirSync(path);
    } catch (err) {
      stale = (err as NodeJS.ErrnoException).code === 'ENOTCONN';
      if (!stale) throw err;
    }
    if (!stale) {
      throw new CacheError(
        'CONFIG_INVALID',
        `mount.path ${path}: ${existing} is mounted there and answering (another weightcache?); unmount it first`,
      );
    }
    const errno = binding().fuseDetach(path);
    if (errno !== 0) {
      throw new CacheError(
        'CONFIG_INVALID',
        `mount.path ${path}: a stale mount is there and umount2 failed (errno ${errno})`,
      );
    }
    log.warn({ fstype: existing }, 'replaced a stale mount left by a process that ended without unmounting');
  }
  await mkdir(path, { recursive: true });
}

/**
 * Sets the kernel's readahead window on the new mount (mount.readAhead). FUSE
 * mounts start at the kernel's default (128 KiB), and FUSE_INIT can only lower
 * it: with one 128 KiB window a sequential reader keeps a single READ in flight.
 * The device is read from mountinfo, not stat(2): a stat of the mount would
 * wait for this very thread to answer its GETATTR.
 */
function setReadAhead(path: string, bytes: number, log: Logger): void {
  const dev = mountsAt(path, 'device');
  const file = `/sys/class/bdi/${dev}/read_ahead_kb`;
  try {
    if (!dev) throw new Error('the mount is not in /proc/self/mountinfo');
    writeFileSync(file, String(Math.ceil(bytes / 1024)));
  } catch (err) {
    log.warn(
      { file, err: (err as Error).message },
      'mount.readAhead not applied: the kernel keeps its default readahead window',
    );
  }
}

/**
 * The filesystem type mounted at `path` (the last mount there), or its device
 * (major:minor), from /proc/self/mountinfo; undefined if none.
 */
function mountsAt(path: string, what: 'fstype' | 'device' = 'fstype'): string | undefined {
  let found: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 2) continue;
    const point = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    if (point === path) found = what === 'device' ? f[2] : f[sep + 1];
  }
  return found;
}
