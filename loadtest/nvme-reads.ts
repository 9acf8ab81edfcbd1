/**
 * Scenario kind "nvme-reads": the NVMe tier's reads alone, in this process,
 * no HTTP: random range reads (NvmeTier.readRange) and whole-chunk reads
 * (get) of chunk files on the loadtest's disk, `queueDepth` reads
 * outstanding, the page cache dropped before each run, beside fio O_DIRECT
 * random reads of the same size and queue depth on the same filesystem.
 *
 * Each variant (block size, O_DIRECT or not, io_uring or the thread pool)
 * writes its own files, so the block size choice and the O_DIRECT default
 * in docs/tiers.md are measured, not assumed; the variants and fio take
 * turns within each repeat. The same reads are also made without
 * JavaScript (addon/bench/nvme_read_bench.cc): the I/O path alone, and
 * the native reader with its checks, so the cost of each layer shows. Per run: GB/s, bytes read from
 * the files per byte returned (the tier's own counter, and the process's
 * read_bytes from /proc: what the device did), and CPU per GB.
 */

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32c } from '../src/chunk/checksum.js';
import { Metrics } from '../src/metrics/metrics.js';
import { NvmeTier } from '../src/tier/nvme.js';
import type { Ctx } from './ctx.js';
import { sizeLabel } from './http-ranges.js';
import { buildNativeBench } from './native-bench.js';
import { dropPageCache } from './pagecache.js';
import { runFio } from './peers/fio.js';
import type { Samples } from './results.js';
import type { NvmeReadsScenario } from './scenario.js';

function chunkKey(i: number): string {
  return JSON.stringify(['bench', 'nvme', 'reads.bin', '"e"', 1 << 40, 4 << 20, i]);
}

function ioReadBytes(): number {
  const m = /^read_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function counter(m: Metrics, name: string): Promise<number> {
  const line = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

export async function runNvmeReads(s: NvmeReadsScenario, ctx: Ctx, samples: Samples): Promise<void> {
  const reason = dropPageCache();
  if (reason) ctx.notes.push(`${reason}: figures may include page-cache hits`);
  const chunk = s.chunkBytes;
  const tiers: { tier: NvmeTier; metrics: Metrics; server: string; dir: string }[] = [];
  let fioFile: string | undefined;
  try {
    // Every variant's files first, so the runs below can interleave the
    // variants (and fio) within each repeat: drift of a shared machine then
    // spreads over all of them instead of favouring whichever ran first.
    for (const v of s.variants) {
      const dir = join(ctx.workDir, `chunks-${v.blockBytes}-${v.directIo}-${v.io}`);
      const metrics = new Metrics();
      const tier = await NvmeTier.open({
        dir,
        maxBytes: s.chunks * chunk * 2,
        metrics,
        blockBytes: v.blockBytes,
        directIo: v.directIo,
        io: v.io,
        queueDepth: s.queueDepth,
        openFiles: s.chunks,
      });
      tiers.push({ tier, metrics, server: `weightcache ${v.label}`, dir });
      ctx.log(`${v.label}: writing ${s.chunks} chunks of ${sizeLabel(chunk)}`);
      const data = randomBytes(chunk);
      for (let i = 0; i < s.chunks; i++) {
        data.writeUInt32LE(i, 0); // distinct chunks
        await tier.put(chunkKey(i), { data, crc32c: crc32c(data) });
      }
    }
    if (s.fio) {
      // The same sizes and queue depth from fio, O_DIRECT, on one file of the same filesystem.
      fioFile = join(ctx.workDir, 'fio.bin');
      const buf = randomBytes(8 << 20);
      const fd = openSync(fioFile, 'w');
      for (let at = 0; at < s.chunks * chunk; at += buf.length) writeSync(fd, buf);
      closeSync(fd);
    }
    // The same reads without JavaScript, on the first variant's files: the
    // I/O path alone (raw), and the native reader with its checks (verified).
    const first = s.variants[0]!;
    const bench = s.native
      ? buildNativeBench('nvme_read_bench', NATIVE_SOURCES, dirname(ctx.clientBin))
      : undefined;
    for (const r of s.reads) {
      const c = `${r.label} · qd ${s.queueDepth}`;
      for (let rep = 0; rep < s.repeats; rep++) {
        for (const t of tiers) await measure(s, ctx, samples, c, r, t);
        if (bench && r.aligned) native(s, ctx, samples, c, r.bytes, bench, tiers[0]!.dir, first.directIo);
        if (fioFile && r.aligned) await fio(s, ctx, samples, c, r.bytes, fioFile);
      }
    }
  } finally {
    for (const t of tiers) {
      await t.tier.close();
      rmSync(t.dir, { recursive: true, force: true });
    }
    if (fioFile) rmSync(fioFile, { force: true });
  }
}

type Read = NvmeReadsScenario['reads'][number];

async function measure(
  s: NvmeReadsScenario,
  ctx: Ctx,
  samples: Samples,
  c: string,
  r: Read,
  t: { tier: NvmeTier; metrics: Metrics; server: string },
): Promise<void> {
  const chunk = s.chunkBytes;
  const { tier, metrics, server } = t;
  dropPageCache();
  const before = {
    disk: await counter(metrics, 'weightcache_nvme_disk_read_bytes_total'),
    returned: await counter(metrics, 'weightcache_nvme_returned_bytes_total'),
    io: ioReadBytes(),
    cpu: process.cpuUsage(),
  };
  const t0 = performance.now();
  const deadline = t0 + s.durationS * 1000;
  let bytes = 0;
  let misses = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const i = Math.floor(Math.random() * s.chunks);
      if (r.bytes >= chunk) {
        const got = await tier.get(chunkKey(i));
        if (got) bytes += got.data.length;
        else misses++;
        continue;
      }
      const slots = Math.floor(chunk / r.bytes);
      const off =
        Math.floor(Math.random() * slots) * r.bytes + (r.aligned ? 0 : 1 + Math.floor(Math.random() * 4000));
      const got = await tier.readRange(chunkKey(i), off, Math.min(r.bytes, chunk - off));
      if (got) bytes += got.length;
      else misses++;
    }
  };
  await Promise.all(Array.from({ length: s.queueDepth }, worker));
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(before.cpu);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const disk = (await counter(metrics, 'weightcache_nvme_disk_read_bytes_total')) - before.disk;
  const returned = (await counter(metrics, 'weightcache_nvme_returned_bytes_total')) - before.returned;
  if (misses > 0) ctx.notes.push(`${c} / ${server}: ${misses} reads missed (must be 0)`);
  samples.add(c, server, 'GB/s', 'GB/s', bytes / wallS / 1e9);
  samples.add(c, server, 'disk read / served', 'x', returned > 0 ? disk / returned : Number.NaN);
  samples.add(
    c,
    server,
    'device read / served',
    'x',
    bytes > 0 ? (ioReadBytes() - before.io) / bytes : Number.NaN,
  );
  samples.add(c, server, 'server CPU', 'cores', cpuS / wallS);
  samples.add(c, server, 'CPU per GB', 'core-s/GB', bytes > 0 ? cpuS / (bytes / 1e9) : Number.NaN);
  ctx.log(`${c} · ${server}: ${(bytes / wallS / 1e9).toFixed(2)} GB/s, ${(cpuS / wallS).toFixed(2)} cores`);
}

const NATIVE_SOURCES = [
  'addon/bench/nvme_read_bench.cc',
  'addon/src/crc32c.cc',
  'addon/src/buffer_pool.cc',
  'addon/src/io/loop.cc',
  'addon/src/io/uring.cc',
  'addon/src/nvme/chunk_format.cc',
  'addon/src/nvme/chunk_reader.cc',
];

function native(
  s: NvmeReadsScenario,
  ctx: Ctx,
  samples: Samples,
  c: string,
  bytes: number,
  bin: string,
  dir: string,
  direct: boolean,
): void {
  dropPageCache();
  const r = spawnSync(
    bin,
    [dir, String(bytes), String(s.queueDepth), String(s.durationS), direct ? '1' : '0'],
    {
      encoding: 'utf8',
      timeout: (s.durationS * 2 + 60) * 1000,
    },
  );
  if (r.status !== 0) {
    ctx.notes.push(`nvme_read_bench: ${(r.stderr || r.error?.message || '').split('\n')[0]}`);
    return;
  }
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const m = JSON.parse(line) as {
      way: string;
      gbps: number;
      cores: number;
      cpuPerGb: number;
      failed: boolean;
    };
    const server =
      m.way === 'raw'
        ? 'weightcache io_uring loop alone, no check (no JS)'
        : 'weightcache native reader, verified (no JS)';
    if (m.failed) ctx.notes.push(`${c} / ${server}: reads failed`);
    samples.add(c, server, 'GB/s', 'GB/s', m.gbps);
    samples.add(c, server, 'server CPU', 'cores', m.cores);
    samples.add(c, server, 'CPU per GB', 'core-s/GB', m.cpuPerGb);
    ctx.log(`${c} · ${server}: ${m.gbps.toFixed(2)} GB/s, ${m.cores.toFixed(2)} cores`);
  }
}

async function fio(
  s: NvmeReadsScenario,
  ctx: Ctx,
  samples: Samples,
  c: string,
  bytes: number,
  file: string,
): Promise<void> {
  dropPageCache();
  const name = `fio O_DIRECT randread bs=${sizeLabel(bytes)} qd=${s.queueDepth}`;
  try {
    const f = await runFio(file, { rw: 'randread', blockBytes: bytes, iodepth: s.queueDepth }, s.durationS);
    samples.add(c, name, 'GB/s', 'GB/s', f.gbps);
    samples.add(c, name, 'server CPU', 'cores', f.cores);
    samples.add(c, name, 'CPU per GB', 'core-s/GB', f.gbps > 0 ? f.cores / f.gbps : Number.NaN);
    ctx.log(`${c} · ${name}: ${f.gbps.toFixed(2)} GB/s`);
  } catch (err) {
    ctx.notes.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
  }
}
