/**
 * The read-only FUSE mount's part of the addon (addon/src/fuse/). Loaded
 * through src/transport/binding.ts.
 */

export interface FuseBinding {
  // The read-only FUSE mount (docs/mount.md). Use it through src/mount/mount.ts.
  /** Opens /dev/fuse, mounts `path` read-only, starts the workers. Throws with the errno text. */
  fuseMount(path: string, options: FuseMountOptions, onRequest: (r: FuseRequest) => void): number;
  /** Lazily unmounts and joins the workers; no onRequest call after it returns. */
  fuseUnmount(id: number): void;
  /** Each reply returns false when the request is no longer pending (timed out: EIO was sent). */
  fuseReplyError(id: number, unique: number, errno: number): boolean;
  fuseReplyEntry(
    id: number,
    unique: number,
    attr: FuseAttr,
    entryTimeoutMs: number,
    attrTimeoutMs: number,
  ): boolean;
  fuseReplyAttr(id: number, unique: number, attr: FuseAttr, attrTimeoutMs: number): boolean;
  fuseReplyOpen(id: number, unique: number, fh: number, keepCache: boolean): boolean;
  /** Written by writev(2) before it returns: the views need not outlive the call. */
  fuseReplyData(id: number, unique: number, buffers: readonly Uint8Array[]): boolean;
  /** `entries`: [ino, type (DT_*), name] flattened, starting at directory offset `firstOffset`. */
  fuseReplyDirents(
    id: number,
    unique: number,
    firstOffset: number,
    maxBytes: number,
    entries: ReadonlyArray<number | string>,
  ): boolean;
  /**
   * READs of handle `fh` whose chunks are all in the mount's `store` are answered by the
   * FUSE workers from it, without JavaScript; chunk i is (objectId, i). Dropped at RELEASE.
   */
  fuseBindFile(id: number, fh: number, objectId: Uint8Array, size: number, chunkSize: number): void;
  fuseUnbindFile(id: number, fh: number): void;
  fuseStats(id: number): FuseStats;
  /** umount2(path, MNT_DETACH): 0 or the errno. */
  fuseDetach(path: string): number;
}

export interface FuseMountOptions {
  readonly threads: number;
  readonly maxRead: number;
  readonly maxBackground: number;
  readonly timeoutMs: number;
  readonly maxPending: number;
  readonly allowOther: boolean;
  readonly uid: number;
  readonly gid: number;
  /** The DRAM tier's native store (src/store/native.ts): READs of bound files that hit it skip JavaScript. */
  readonly store?: unknown;
}

export interface FuseAttr {
  readonly ino: number;
  readonly size: number;
  /** File type and permission bits (S_IFREG | 0o444, ...). */
  readonly mode: number;
  readonly nlink: number;
  readonly mtimeMs: number;
  readonly uid: number;
  readonly gid: number;
  /** The DRAM tier's native store (src/store/native.ts): READs of bound files that hit it skip JavaScript. */
  readonly store?: unknown;
}

export type FuseRequest =
  | { op: 'lookup'; unique: number; nodeid: number; pid: number; name: string }
  | { op: 'getattr'; unique: number; nodeid: number; pid: number; fh: number }
  | { op: 'open'; unique: number; nodeid: number; pid: number; flags: number }
  | {
      op: 'read' | 'readdir';
      unique: number;
      nodeid: number;
      pid: number;
      fh: number;
      offset: number;
      size: number;
    }
  | { op: 'readlink'; unique: number; nodeid: number; pid: number }
  | { op: 'release'; unique: number; nodeid: number; pid: number; fh: number }
  /** [nodeid, nlookup] pairs flattened. */
  | { op: 'forget'; unique: number; nodeid: number; pid: number; forgets: number[] };

export interface FuseStats {
  requests: number;
  /** Handed to JavaScript. */
  posted: number;
  /** Answered EIO by the reaper: JavaScript did not answer in time. */
  timeouts: number;
  lateReplies: number;
  protocolErrors: number;
  /** Answered EIO at once: too many requests waiting for JavaScript. */
  refused: number;
  pending: number;
  protocolMinor: number;
  /** READs the workers answered from the store themselves, and their bytes. */
  fastReads: number;
  fastBytes: number;
}
