/**
 * Writing one NVMe chunk file atomically, and reading a version 1 file whole
 * for its migration. The tier (nvme.ts) decides which file and what a failure
 * means; this file only moves bytes, checks v1 ones against their header
 * (chunk-file.ts), and keeps writes atomic. v2 reads are nvme-reader.ts.
 */
import { constants as fsc } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { crc32c } from '../chunk/checksum.js';
import { FileJobs } from '../fill/file-jobs.js';
import { decodeChunkHeaderV1 } from './chunk-file.js';
import type { Chunk } from './tier.js';

/** What the index says about a version 1 file; its header must agree. */
export interface ExpectedChunk {
  readonly dataOffset: number;
  readonly dataLength: number;
}

/**
 * Reads and verifies one whole version 1 chunk file (migration only; v2
 * files are read natively, see nvme-reader.ts): the header must name `key`
 * and match the file's size, the data its CRC32C. Returns the reason on a
 * mismatch. The data is read into one buffer of exactly its length.
 */
export async function readV1ChunkFile(
  path: string,
  key: string,
  entry: ExpectedChunk,
): Promise<Chunk | string> {
  const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const head = Buffer.allocUnsafe(entry.dataOffset);
    if ((await readFully(fh, head, 0)) !== head.length) return 'truncated header';
    const decoded = decodeChunkHeaderV1(head);
    if (!decoded.ok) return decoded.reason;
    const h = decoded.header;
    if (h.key !== key) return 'header names another chunk';
    if (h.dataOffset !== entry.dataOffset || h.dataLength !== entry.dataLength) return 'header changed';
    const { size } = await fh.stat();
    if (size !== h.dataOffset + h.dataLength) return 'file size does not match header';
    const data = Buffer.allocUnsafe(h.dataLength);
    if ((await readFully(fh, data, h.dataOffset)) !== data.length) return 'truncated data';
    if (crc32c(data) !== h.dataCrc32c) return 'data crc32c mismatch';
    return { data, crc32c: h.dataCrc32c };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

export async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Threads writing chunk files (addon/src/fill/), shared by every NVMe tier of
 * the process and used by nothing else: write-through never waits behind, or
 * holds up, libuv's thread pool (fs origin reads have threads of their own).
 * Two, as TieredStore keeps at most NVME_WRITES_IN_FLIGHT writes running.
 */
export const CHUNK_WRITE_THREADS = 2;
/**
 * Writes waiting for those threads before one is refused (OVERLOADED, which
 * the tier counts as a failed write). Above every bound in front of it
 * (TieredStore's in-flight writes, the tier's maxPendingWrites), so a node
 * never reaches it; it bounds what a bug could queue.
 */
export const CHUNK_WRITES_QUEUED = 1024;

/**
 * Chunk files are written with O_DIRECT where the filesystem allows it (the
 * 4 KiB-aligned header and data; a short last chunk's tail buffered): the
 * device takes the bytes straight from chunk memory, so write-through costs
 * no copy into the page cache and does not fill it with chunks DRAM already
 * holds. Where O_DIRECT is refused (EINVAL: tmpfs on old kernels, some FUSE
 * and network filesystems) the write falls back to buffered by itself.
 */
export const CHUNK_WRITES_DIRECT = true;

let writer: FileJobs | undefined;

/** The process's chunk-file writer, started at the first write. */
export function chunkWriter(): FileJobs {
  writer ??= new FileJobs('nvme chunk writes', {
    threads: CHUNK_WRITE_THREADS,
    maxQueued: CHUNK_WRITES_QUEUED,
  });
  return writer;
}

/**
 * Writes header + data to `tmp` (created here, O_EXCL) and renames it to
 * `path`, as one job on the chunk writer's threads. On any failure `tmp` is
 * removed (an ENOSPC mid-write leaves no partial file behind) and the error
 * (its errno name in `code`) is thrown. Either `path` is complete or it is
 * untouched: nothing ever writes to a final name directly.
 *
 * No fsync by default. A kill -9 keeps the page cache, so a renamed file is
 * whole for the next process. A power cut can leave a renamed file with lost
 * data; its CRCs catch that (scan or first get) and it is refetched: for a
 * cache, one lost chunk is cheaper than an fsync per chunk on the fill path.
 */
export function writeChunkFileAtomic(
  path: string,
  tmp: string,
  header: Buffer,
  data: Buffer,
  fsync: boolean,
): Promise<void> {
  return chunkWriter().writeAtomic(path, tmp, header, data, fsync, CHUNK_WRITES_DIRECT);
}

/**
 * mkdir of one fan-out directory. Not recursive at first: a recursive mkdir
 * reports ENOENT on a read-only device, and the log should name EROFS.
 */
export async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return;
    if (errnoCode(err) !== 'ENOENT') throw err;
    await mkdir(path, { recursive: true }); // the tier's root itself is missing
  }
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
