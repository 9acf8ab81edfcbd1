/**
 * The NVMe tier's warm restart: rebuild the index from the chunk directory.
 * Only headers are read (a 50 GiB tier is ~12,800 files of 4 KiB headers);
 * data CRCs are checked by every get instead.
 *
 * What the scan does with each entry of `<dir>/<xx>/`:
 * - `<64 hex>`: a chunk file. Kept if its header decodes, names a key whose
 *   chunkFileId is the file's name (and `xx` its first two chars), and the
 *   file is exactly header + data long. Otherwise deleted and counted.
 * - `<64 hex>.tmp-*`: a write cut short by a crash: deleted.
 * - anything else: not ours to delete; left alone and reported in the log.
 * Top-level entries that are not two-hex-char directories are ignored too.
 */
import { constants as fsc } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkFileId } from '../chunk/name.js';
import type { Metrics } from '../metrics/metrics.js';
import { decodeChunkHeader, MAX_DATA_OFFSET } from './chunk-file.js';

export interface IndexEntry {
  readonly key: string;
  readonly path: string;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly crc32c: number;
  /** Last known use (ms since epoch): restores LRU order at restart. */
  accessedMs: number;
}

interface ScanLogger {
  warn(obj: object, msg: string): void;
}

const SUBDIR = /^[0-9a-f]{2}$/;
const CHUNK_FILE = /^[0-9a-f]{64}$/;
const TEMP_FILE = /^[0-9a-f]{64}\.tmp-/;
/** Header reads in flight during a scan: enough to keep an NVMe queue busy, few enough fds. */
const SCAN_CONCURRENCY = 32;

/** Valid chunk files under `dir`, least recently used first. */
export async function scanChunkDir(
  dir: string,
  metrics?: Metrics,
  logger?: ScanLogger,
): Promise<IndexEntry[]> {
  const candidates: { path: string; id: string }[] = [];
  const counts = { dropped: 0, tempRemoved: 0, ignored: 0 };
  for (const top of await readdir(dir, { withFileTypes: true })) {
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
      } else if (CHUNK_FILE.test(name) && name.startsWith(top.name)) {
        candidates.push({ path, id: name });
      } else {
        counts.ignored++;
      }
    }
  }

  const found: IndexEntry[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const c = candidates[next++]!;
      const got = await readEntry(c.path, c.id);
      if (typeof got !== 'string') {
        found.push(got);
        continue;
      }
      if (got === 'header-crc') metrics?.checksumFailures.inc({ tier: 'nvme' });
      else metrics?.tierErrors.inc({ tier: 'nvme', op: 'scan' });
      if (got.startsWith('unreadable')) {
        // Maybe transient (EMFILE) or the device (EIO): not indexed, but not deleted on a guess.
        counts.ignored++;
        logger?.warn({ path: c.path, reason: got }, 'nvme tier: chunk file unreadable at start, skipped');
        continue;
      }
      counts.dropped++;
      logger?.warn({ path: c.path, reason: got }, 'nvme tier: invalid chunk file dropped at start');
      await unlink(c.path).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));

  if (counts.dropped + counts.tempRemoved + counts.ignored > 0)
    logger?.warn({ dir, ...counts }, 'nvme tier: scan found files it could not use');
  return found.sort((a, b) => a.accessedMs - b.accessedMs);
}

/** The index entry for one chunk file, or why it is not a valid one. */
async function readEntry(path: string, id: string): Promise<IndexEntry | string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) return 'not a regular file';
    const head = Buffer.allocUnsafe(Math.min(st.size, MAX_DATA_OFFSET));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const decoded = decodeChunkHeader(head.subarray(0, bytesRead));
    if (!decoded.ok) return decoded.reason;
    const h = decoded.header;
    if (chunkFileId(h.key) !== id) return 'file name does not match header key';
    if (st.size !== h.dataOffset + h.dataLength) return 'file size does not match header';
    return {
      key: h.key,
      path,
      dataOffset: h.dataOffset,
      dataLength: h.dataLength,
      crc32c: h.dataCrc32c,
      accessedMs: Math.max(st.atimeMs, st.mtimeMs),
    };
  } catch (err) {
    return `unreadable: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
