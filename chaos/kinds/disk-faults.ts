/**
 * Disk faults under a node's NVMe tier: bits flipped in 1 % of the device
 * blocks of its chunk directory, chunk files truncated at nine places (live,
 * and while the node is down), and SIGKILL landing while fills are being
 * written, 200 times. The node's DRAM tier is tiny, so reads come from the
 * chunk files. The scenario touches only the directory (as a failing device
 * or a crash would) and reads only through HTTP: what it counts is what a
 * client could see — corrupt bytes served (must be 0) — and what recovery
 * cost — chunks read from the origin again.
 *
 * It knows one thing about the layout: chunk files are the regular files
 * under cache.nvme.dir whose names carry no ".tmp", except the directory's
 * lock file (LOCK_FILE), which is no chunk. The cut points were picked for
 * format version 1 (a 4 KiB header block, then the data) and still make
 * sense for version 2 (a header with a CRC per 4 KiB block, padded to 4 KiB
 * boundaries: 8 KiB for a 4 MiB chunk; docs/tiers.md): empty, 1 byte, 8, 39,
 * 64, one byte short of a block, exactly one block, half the file, one byte
 * short of the end.
 */
import { randomInt } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  metricSum,
  startWeightcacheProcess,
  type WeightcacheProcess,
} from '../../loadtest/peers/weightcache.js';
import { LOCK_FILE } from '../../src/tier/nvme-scan.js';
import type { Ctx } from '../ctx.js';
import { Dataset } from '../data.js';
import { RangeReader } from '../http-reader.js';
import { sleep } from '../latency.js';
import type { DiskFaultsScenario } from '../scenario.js';

const CUTS: readonly { name: string; at: (size: number) => number }[] = [
  { name: 'empty', at: () => 0 },
  { name: '1 byte', at: () => 1 },
  { name: '8 bytes', at: () => 8 },
  { name: '39 bytes', at: () => 39 },
  { name: '64 bytes', at: () => 64 },
  { name: '4095 bytes', at: () => 4095 },
  { name: '4096 bytes', at: () => 4096 },
  { name: 'half', at: (n) => Math.floor(n / 2) },
  { name: 'last byte missing', at: (n) => n - 1 },
];

function chunkFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.includes('.tmp') && e.name !== LOCK_FILE) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

function pick<T>(xs: readonly T[], n: number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

export async function runDiskFaults(s: DiskFaultsScenario, ctx: Ctx): Promise<void> {
  const data = new Dataset(join(ctx.workDir, 'origin'));
  const chunkDir = join(ctx.workDir, 'chunks');
  const keys = Array.from({ length: s.files }, (_, i) => `disk/shard-${i}.bin`);
  for (const k of keys) data.random(k, s.fileBytes);
  const chunksPer = Math.ceil(s.fileBytes / s.chunkBytes);
  const killChunks = Math.ceil(s.killFileBytes / s.chunkBytes);
  let node!: WeightcacheProcess;
  let reader!: RangeReader;
  const start = async () => {
    node = await startWeightcacheProcess({
      role: 'node',
      workDir: ctx.workDir,
      config: {
        // Counters are read right before and after each step: a cached /metrics page would lag.
        http: { metricsCache: 0 },
        origin: { type: 'fs', fs: { root: data.root } },
        cache: {
          chunkSize: s.chunkBytes,
          dram: { maxBytes: s.dramBytes },
          nvme: { dir: chunkDir, maxBytes: '4GiB' },
        },
      },
    });
    reader = new RangeReader(node.url, { connections: 8, timeoutMs: 60_000 });
  };
  const kill = async () => {
    await reader.close();
    await node.kill();
  };
  const originReads = async () =>
    metricSum(await node.metrics(), 'weightcache_origin_requests_total', 'op="read"');
  /** Reads `ks` whole, 4 at a time; returns wrong bytes and failed reads. */
  const readAll = async (ks: readonly string[]) => {
    let wrong = 0;
    let failed = 0;
    let wrongReads = 0;
    for (let i = 0; i < ks.length; i += 4) {
      const rs = await Promise.all(
        ks.slice(i, i + 4).map((k) => reader.read(data.urlPath(k), 0, data.get(k).length - 1, data.get(k))),
      );
      for (const r of rs) {
        wrong += r.wrong;
        if (r.wrong > 0) wrongReads++;
        if (!r.ok && r.wrong === 0) failed++;
      }
    }
    return { wrong, failed, wrongReads };
  };
  const nvmeEntries = async () => {
    const st = (await (await fetch(`${node.url}/v1/status`)).json()) as {
      tiers?: { nvme?: { entries?: number } };
    };
    return st.tiers?.nvme?.entries ?? 0;
  };
  const waitForEntries = async (n: number) => {
    for (let i = 0; i < 1200; i++) {
      if ((await nvmeEntries()) >= n) return;
      await sleep(25);
    }
    throw new Error(`the NVMe tier never held ${n} chunks`);
  };
  const f = ctx.figures;
  let totalWrong = 0;
  let corruptServed = 0;

  // --- Fill: every chunk of every object on NVMe.
  await start();
  const fill = await readAll(keys);
  if (fill.failed + fill.wrong > 0) throw new Error(`fill: ${fill.failed} failed, ${fill.wrong} wrong bytes`);
  await waitForEntries(keys.length * chunksPer);

  // --- Bit flips, live: one flipped bit in each of 1 % of the directory's blocks.
  {
    const files = chunkFiles(chunkDir);
    const blocks = files.flatMap((p) =>
      Array.from({ length: Math.ceil(statSync(p).size / s.blockBytes) }, (_, b) => ({ p, b })),
    );
    const flips = pick(blocks, Math.round(blocks.length * s.flipFraction));
    const damaged = new Set<string>();
    for (const { p, b } of flips) {
      const size = statSync(p).size;
      const at = b * s.blockBytes + randomInt(Math.min(s.blockBytes, size - b * s.blockBytes));
      const fd = openSync(p, 'r+');
      const one = Buffer.alloc(1);
      readSync(fd, one, 0, 1, at);
      one[0]! ^= 1 << randomInt(8);
      writeSync(fd, one, 0, 1, at);
      closeSync(fd);
      damaged.add(p);
    }
    const before = await originReads();
    const checksumBefore = metricSum(await node.metrics(), 'weightcache_checksum_failures_total');
    const first = await readAll(keys);
    const refetched = (await originReads()) - before;
    const checksumFailures =
      metricSum(await node.metrics(), 'weightcache_checksum_failures_total') - checksumBefore;
    const second = await readAll(keys);
    const refetchedAgain = (await originReads()) - before - refetched;
    const c = `${Math.round(s.flipFraction * 1000) / 10}% of ${s.blockBytes / 1024} KiB blocks bit-flipped`;
    f.add(c, 'blocks flipped', 'count', flips.length);
    f.add(c, 'chunk files damaged', 'count', damaged.size);
    f.add(c, 'chunks refetched from the origin', 'count', refetched);
    f.add(c, 'refetched again on the next pass', 'count', refetchedAgain);
    f.add(c, 'checksum failures counted by the node', 'count', checksumFailures);
    f.add(c, 'corrupt chunks served', 'count', first.wrongReads + second.wrongReads);
    f.add(c, 'failed reads', 'count', first.failed + second.failed);
    totalWrong += first.wrong + second.wrong;
    corruptServed += first.wrongReads + second.wrongReads;
    if (damaged.size > refetched) {
      ctx.notes.push(
        `bit flips: ${damaged.size - refetched} damaged chunk file(s) needed no refetch (a flip in the unchecked padding between header and data is harmless)`,
      );
    }
  }

  // --- Truncations: live (the node holds the files in its index), then while it is down (the scan at start).
  for (const when of ['live', 'while down'] as const) {
    if (when === 'while down') await kill();
    const files = pick(chunkFiles(chunkDir), CUTS.length * s.truncationsPerVariant);
    CUTS.forEach((cut, i) => {
      for (const p of files.slice(i * s.truncationsPerVariant, (i + 1) * s.truncationsPerVariant)) {
        truncateSync(p, cut.at(statSync(p).size));
      }
    });
    if (when === 'while down') await start();
    const before = await originReads();
    const r = await readAll(keys);
    const c = `${CUTS.length} truncation variants × ${s.truncationsPerVariant}, ${when}`;
    f.add(c, 'chunk files truncated', 'count', files.length);
    f.add(c, 'chunks refetched from the origin', 'count', (await originReads()) - before);
    f.add(c, 'corrupt chunks served', 'count', r.wrongReads);
    f.add(c, 'failed reads', 'count', r.failed);
    totalWrong += r.wrong;
    corruptServed += r.wrongReads;
  }

  // --- SIGKILL while fills are written: each cycle reads a new object and is killed 0..killWithinMs in.
  const cycles = ctx.scaled(s.killCycles, 5);
  let refetched = 0;
  let persisted = 0;
  let partial = 0;
  let failedReads = 0;
  const killKeys: string[] = [];
  const verifyPrevious = async () => {
    const k = killKeys.at(-1);
    if (!k) return;
    const before = await originReads();
    const r = await readAll([k]);
    const got = (await originReads()) - before;
    refetched += got;
    persisted += killChunks - got;
    if (got > 0 && got < killChunks) partial++;
    failedReads += r.failed;
    totalWrong += r.wrong;
    corruptServed += r.wrongReads;
  };
  // Where to land the kill: within the time one object takes from request to its last chunk
  // file written, measured now (the machine's speed varies with its other load).
  let windowMs = 0;
  for (let i = 0; i < 3; i++) {
    const k = `kill/calibrate-${i}.bin`;
    data.random(k, s.killFileBytes);
    const entries = await nvmeEntries();
    const t0 = performance.now();
    await readAll([k]);
    await waitForEntries(entries + killChunks);
    windowMs = Math.max(windowMs, performance.now() - t0);
  }
  ctx.notes.push(
    `kills land 0-${Math.round(windowMs)} ms after the read of a new object starts (its fill and writes, measured)`,
  );
  ctx.log(`${cycles} SIGKILL-during-write cycles`);
  for (let i = 0; i < cycles; i++) {
    await verifyPrevious();
    const k = `kill/cycle-${i}.bin`;
    data.random(k, s.killFileBytes);
    killKeys.push(k);
    const reading = reader.read(data.urlPath(k), 0, s.killFileBytes - 1, data.get(k));
    await sleep(randomInt(Math.round(windowMs) + 1));
    await kill();
    const r = await reading; // cut short by the kill, or complete: either way never wrong bytes
    totalWrong += r.wrong;
    corruptServed += r.wrong > 0 ? 1 : 0;
    await start();
    if (i % 20 === 19) ctx.log(`  ${i + 1}/${cycles}`);
  }
  await verifyPrevious();
  // Every object of every cycle, once more, after all the crashes.
  const final = await readAll(killKeys);
  totalWrong += final.wrong;
  corruptServed += final.wrongReads;
  const c = `${cycles} SIGKILL-during-write cycles`;
  f.add(c, 'cycles', 'count', cycles);
  f.add(c, 'chunks found on NVMe after the restart', 'count', persisted);
  f.add(c, 'chunks refetched from the origin', 'count', refetched);
  f.add(c, 'cycles that left an object partly on NVMe', 'count', partial);
  f.add(c, 'corrupt chunks served', 'count', final.wrongReads);
  f.add(c, 'failed reads after restart', 'count', failedReads + final.failed);
  f.add('all', 'corrupt chunks served', 'count', corruptServed);
  f.add('all', 'wrong bytes', 'bytes', totalWrong);
  await reader.close();
  await node.stop();
}
