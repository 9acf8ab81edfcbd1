/**
 * The NVMe tier's warm restart: rebuild the index from the chunk directory.
 * Only headers are read (a 50 GiB tier is ~12,800 files of ~8 KiB headers);
 * block CRCs are checked by every read instead.
 *
 * What the scan does with each entry of `<dir>/<xx>/`:
 * - `<32 hex>-<index>`: a version 2 chunk file. Kept if its header decodes,
 *   names a key whose chunkFileName is the file's name (and `xx` its
 *   directory), and the file is exactly header + data long.
 * - `<64 hex>`: a version 1 chunk file, the same checks with the v1 name
 *   (SHA-256 of the key). Kept, marked for migration on first use.
 * - `<either>.tmp-*`: a write cut short by a crash: deleted.
 * - anything else: not ours to delete; left alone and reported in the log.
 * Top-level entries that are not two-hex-char directories are ignored too
 * (the lock file, weightcache.lock, is ours and not reported).
 */
import { constants as fsc } from 'node:fs';
import { type FileHandle, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkFileId } from '../chunk/name.js';
import { forEachBounded } from '../fill/pool.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  chunkFileName,
  decodeChunkHeader,
  decodeChunkHeaderV1,
  HEADER_GUESS_BYTES,
  V1_MAX_DATA_OFFSET,
} from './chunk-file.js';
import { readFully } from './chunk-io.js';

export interface IndexEntry {
  readonly key: string;
  readonly path: string;
  /** 2: read natively by blocks; 1: migrated to 2 on first use. */
  readonly format: 1 | 2;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly crc32c: number;
  /** Last known use (ms since epoch): restores LRU order at restart. */
  accessedMs: number;
}

interface ScanLogger {
  warn(obj: object, msg: string): void;
}

export const LOCK_FILE = 'weightcache.lock';
const SUBDIR = /^[0-9a-f]{2}$/;
const V2_FILE = /^[0-9a-f]{32}-(0|[1-9][0-9]{0,9})$/;
const V1_FILE = /^[0-9a-f]{64}$/;
const TEMP_FILE = /^([0-9a-f]{64}|[0-9a-f]{32}-[0-9]+)\.tmp-/;
/** Header reads in flight during a scan: enough to keep an NVMe queue busy, few enough fds. */
const SCAN_CONCURRENCY = 32;

/** Valid chunk files under `dir`, least recently used first. */
export async function scanChunkDir(
  dir: string,
  metrics?: Metrics,
  logger?: ScanLogger,
): Promise<IndexEntry[]> {
  const candidates: { path: string; sub: string; name: string; format: 1 | 2 }[] = [];
  const counts = { dropped: 0, tempRemoved: 0, ignored: 0 };
  for (const top of await readdir(dir, { withFileTypes: true })) {
    if (top.name === LOCK_FILE && top.isFile()) continue;
    if (!top.isDirectory() || !SUBDIR.test(top.name)) {
      counts.ignored++;
      continue;
    }
    const sub = join(dir, top.name);
    let names: string[];
    try {
      names = await readdir(sub);
    } catch (err) {
      metrics?.tierErrors.inc({ tier: 'nvme', op: 'scan' });
      logger?.warn({ err, dir: sub }, 'nvme tier: cannot list chunk subdirectory, skipped');
      continue;
    }
    for (const name of names) {
      const path = join(sub, name);
      if (TEMP_FILE.test(name)) {
        await unlink(path).catch(() => undefined);
        counts.tempRemoved++;
      } else if (V2_FILE.test(name)) {
        candidates.push({ path, sub: top.name, name, format: 2 });
      } else if (V1_FILE.test(name) && name.startsWith(top.name)) {
        candidates.push({ path, sub: top.name, name, format: 1 });
      } else {
        counts.ignored++;
      }
    }
  }

  const found: IndexEntry[] = [];
  await forEachBounded(candidates, SCAN_CONCURRENCY, async (c) => {
    const got = await readEntry(c);
    if (typeof got !== 'string') {
      found.push(got);
      return;
    }
    if (got === 'header-crc' || got === 'block-table') metrics?.checksumFailures.inc({ tier: 'nvme' });
    else metrics?.tierErrors.inc({ tier: 'nvme', op: 'scan' });
    if (got.startsWith('unreadable')) {
      // Maybe transient (EMFILE) or the device (EIO): not indexed, but not deleted on a guess.
      counts.ignored++;
      logger?.warn({ path: c.path, reason: got }, 'nvme tier: chunk file unreadable at start, skipped');
      return;
    }
    counts.dropped++;
    logger?.warn({ path: c.path, reason: got }, 'nvme tier: invalid chunk file dropped at start');
    await unlink(c.path).catch(() => undefined);
  });

  if (counts.dropped + counts.tempRemoved + counts.ignored > 0)
    logger?.warn({ dir, ...counts }, 'nvme tier: scan found files it could not use');
  return found.sort((a, b) => a.accessedMs - b.accessedMs);
}

/** The index entry for one chunk file, or why it is not a valid one. */
async function readEntry(c: {
  path: string;
  sub: string;
  name: string;
  format: 1 | 2;
}): Promise<IndexEntry | string> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(c.path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) return 'not a regular file';
    const accessedMs = Math.max(st.atimeMs, st.mtimeMs);
    if (c.format === 1) {
      const head = Buffer.allocUnsafe(Math.min(st.size, V1_MAX_DATA_OFFSET));
      const decoded = decodeChunkHeaderV1(head.subarray(0, await readFully(fh, head, 0)));
      if (!decoded.ok) return decoded.reason;
      const h = decoded.header;
      if (chunkFileId(h.key) !== c.name) return 'file name does not match header key';
      if (st.size !== h.dataOffset + h.dataLength) return 'file size does not match header';
      return { key: h.key, path: c.path, format: 1, ...lengths(h), accessedMs };
    }
    let head = Buffer.allocUnsafe(Math.min(st.size, HEADER_GUESS_BYTES));
    let decoded = decodeChunkHeader(head.subarray(0, await readFully(fh, head, 0)));
    if (!decoded.ok && decoded.dataOffset !== undefined && decoded.dataOffset <= st.size) {
      head = Buffer.allocUnsafe(decoded.dataOffset); // a longer header than usual (big key or chunk)
      decoded = decodeChunkHeader(head.subarray(0, await readFully(fh, head, 0)));
    }
    if (!decoded.ok) return decoded.reason;
    const h = decoded.header;
    const want = chunkFileName(h.key);
    if (!want || want.name !== c.name || want.subdir !== c.sub) return 'file name does not match header key';
    if (!want.objectId.equals(h.objectId) || want.index !== h.index)
      return 'header object id does not match key';
    if (st.size !== h.dataOffset + h.dataLength) return 'file size does not match header';
    return { key: h.key, path: c.path, format: 2, ...lengths(h), accessedMs };
  } catch (err) {
    return `unreadable: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function lengths(h: { dataOffset: number; dataLength: number; dataCrc32c: number }) {
  return { dataOffset: h.dataOffset, dataLength: h.dataLength, crc32c: h.dataCrc32c };
}
