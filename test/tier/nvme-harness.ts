/**
 * Shared set-up for the NVMe tier tests: temp dirs and tmpfs mounts removed
 * after each test, a logger that records, a controllable clock, and helpers
 * to look at the files and metrics.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Logger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { chunkFileName } from '../../src/tier/chunk-file.js';
import { NvmeTier, type NvmeTierOptions, type TierLogger } from '../../src/tier/nvme.js';

export const KiB = 1024;
const dirs: string[] = [];
const mounts: string[] = [];
/** Tiers opened by setup(): closed after each test (they hold the directory's lock and open files). */
const opened: NvmeTier[] = [];

export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wc-nvme-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const t of opened.splice(0)) await t.close();
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

// The tier's logger type is structural: a pino Logger must fit it.
const pinoFits: Logger extends TierLogger ? true : false = true;
void pinoFits;

export class RecordingLogger implements TierLogger {
  readonly warns: { obj: object; msg: string }[] = [];
  readonly infos: { obj: object; msg: string }[] = [];
  warn(obj: object, msg: string): void {
    this.warns.push({ obj, msg });
  }
  info(obj: object, msg: string): void {
    this.infos.push({ obj, msg });
  }
  count(re: RegExp): number {
    return this.warns.filter((w) => re.test(w.msg)).length;
  }
}

export interface Setup {
  dir: string;
  tier: NvmeTier;
  metrics: Metrics;
  log: RecordingLogger;
  clock: { t: number };
  reopen(extra?: Partial<NvmeTierOptions>): Promise<NvmeTier>;
}

export async function setup(extra: Partial<NvmeTierOptions> & { dir?: string } = {}): Promise<Setup> {
  const dir = extra.dir ?? (await tempDir());
  const metrics = new Metrics();
  const log = new RecordingLogger();
  const clock = { t: 1_000_000 };
  const base = { dir, maxBytes: 4 * 1024 * KiB, metrics, logger: log, now: () => clock.t, ...extra };
  const open = async (o: NvmeTierOptions) => {
    const t = await NvmeTier.open(o);
    opened.push(t);
    return t;
  };
  const tier = await open(base);
  return { dir, tier, metrics, log, clock, reopen: (more = {}) => open({ ...base, ...more }) };
}

/** Where the tier keeps `key`'s (version 2) file. */
export function pathOf(dir: string, key: string): string {
  const n = chunkFileName(key)!;
  return join(dir, n.subdir, n.name);
}

/** Every file under `dir` but the tier's lock file. */
export async function allFiles(dir: string): Promise<string[]> {
  const out = await readdir(dir, { recursive: true, withFileTypes: true });
  return out
    .filter((e) => e.isFile() && !(e.name === 'weightcache.lock' && e.parentPath === dir))
    .map((e) => join(e.parentPath, e.name));
}

export const total = (m: Metrics, c: Metrics['tierErrors'] | Metrics['checksumFailures'], labels = {}) =>
  m.total(c, { tier: 'nvme', ...labels });
export const gauge = async (g: Metrics['tierDegraded']) =>
  (await g.get()).values.find((v) => v.labels.tier === 'nvme')?.value;

/**
 * Full and read-only devices are tested on a real tmpfs, which needs mount
 * (root here). Where mount is not permitted those tests show as skipped; the
 * ENOTDIR test still covers an unwritable directory.
 */
function canMount(): boolean {
  const probe = mkdtempSync(join(tmpdir(), 'wc-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
export const MOUNT_OK = canMount();

export async function tmpfs(size: string): Promise<string> {
  const d = await tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d]);
  mounts.push(d);
  return d;
}
