/**
 * Test data: checkpoint-like files of random bytes (incompressible, like
 * weights), created once under a cache dir and reused while their size
 * matches, because writing 1 GiB costs seconds of a 10-minute budget.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Persistent across runs (fixtures), per-run dirs go under it too. */
export const LOADTEST_HOME = process.env.WEIGHTCACHE_LOADTEST_DIR ?? '/var/tmp/weightcache-loadtest';

export function ensureFile(path: string, size: number): void {
  if (existsSync(path) && statSync(path).size === size) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  const block = Buffer.allocUnsafe(16 * 2 ** 20);
  try {
    for (let off = 0; off < size; off += block.length) {
      const n = Math.min(block.length, size - off);
      randomFillSync(block, 0, n);
      writeSync(fd, block, 0, n);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export interface ModelFile {
  readonly key: string;
  readonly size: number;
}

/**
 * A model directory `{root}/{container}/{prefix}/...`: shards of `shardBytes`
 * adding up to `totalBytes`, plus a small config.json (real checkpoints mix
 * one big and a few tiny files; the tiny one exercises the short last chunk).
 */
export function ensureModel(
  root: string,
  container: string,
  prefix: string,
  totalBytes: number,
  shardBytes: number,
) {
  const files: ModelFile[] = [];
  let i = 0;
  for (let left = totalBytes; left > 0; left -= shardBytes, i++) {
    const key = `${prefix}/model-${String(i + 1).padStart(5, '0')}.safetensors`;
    const size = Math.min(shardBytes, left);
    ensureFile(join(root, container, key), size);
    files.push({ key, size });
  }
  const cfg = `${prefix}/config.json`;
  ensureFile(join(root, container, cfg), 4321);
  files.push({ key: cfg, size: 4321 });
  return files;
}
