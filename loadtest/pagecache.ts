/**
 * Page-cache control. NVMe-tier runs must be real disk reads, so the cache is
 * dropped before each; DRAM-tier peers that rely on the page cache (nginx)
 * are re-warmed right before each run, because a kernel reclaim job on these
 * machines evicts pages idle for ~60 s.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';

/** sync + drop clean caches; returns a reason when not permitted (not root, read-only /proc). */
export function dropPageCache(): string | null {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return null;
  } catch (err) {
    return `cannot drop the page cache: ${(err as Error).message}`;
  }
}

/** Reads a file once so its pages are resident. */
export function warmPageCache(path: string): void {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 * 2 ** 20);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0) {
      // Reading is the point.
    }
  } finally {
    closeSync(fd);
  }
}
