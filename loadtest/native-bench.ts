/**
 * Builds one of the addon's native benchmarks (addon/bench/*.cc) with g++
 * against addon/src, as the addon is built (-O2, C++20), outside node-gyp:
 * the benchmarks time C++ with no JavaScript in the loop. Rebuilt when a
 * source or any addon header is newer than the binary.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..');

function newestHeaderMs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestHeaderMs(p));
    else if (e.name.endsWith('.h')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * `sources` are repository paths (the benchmark first, then the addon
 * sources it links); returns the binary's path under `outDir`.
 */
export function buildNativeBench(name: string, sources: readonly string[], outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const bin = join(outDir, name);
  const files = sources.map((s) => join(REPO, s));
  const include = join(REPO, 'addon', 'src');
  if (existsSync(bin)) {
    const built = statSync(bin).mtimeMs;
    const newest = Math.max(newestHeaderMs(include), ...files.map((f) => statSync(f).mtimeMs));
    if (newest <= built) return bin;
  }
  const r = spawnSync('g++', ['-std=c++20', '-O2', '-pthread', `-I${include}`, ...files, '-o', bin], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`g++ ${name} failed: ${r.stderr || r.error?.message}`);
  return bin;
}
