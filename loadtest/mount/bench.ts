/**
 * Sequential read of one large file (warm: every chunk in the node's DRAM)
 * through the FUSE mount vs the same node's HTTP door, in the same run, with
 * the node's CPU per GB beside each figure (docs/performance.md, "FUSE mount").
 *
 *   node --import tsx loadtest/mount/bench.ts --mib 1024 --runs 3
 *
 * Needs /dev/fuse and root. Before each mount run the file's pages are dropped
 * from the page cache (`dd iflag=nocache count=0`, fadvise DONTNEED on that
 * file only), so every run goes through FUSE and the read path, not the page
 * cache. Readers: `dd bs=1M` on the mount, `curl -o /dev/null` on HTTP.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { treeCpuSeconds } from '../cpu.js';

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' } },
});
const mib = Number(values.mib);
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'wc-mount-bench-'));
const origin = join(dir, 'origin');
mkdirSync(join(origin, 'bench', 'model'), { recursive: true });
const file = join(origin, 'bench', 'model', 'big.bin');
const fd = openSync(file, 'w');
const block = Buffer.alloc(2 ** 20);
for (let i = 0; i < mib; i++) {
  block.fill(i & 0xff);
  writeSync(fd, block);
}
closeSync(fd);
const mnt = join(dir, 'mnt');
const port = 18_000 + (process.pid % 1000);
writeFileSync(
  join(dir, 'node.yaml'),
  [
    `http: { listen: "127.0.0.1:${port}" }`,
    `origin: { type: fs, fs: { root: ${origin} } }`,
    `cache: { chunkSize: 4MiB, dram: { maxBytes: ${mib + 256}MiB }, nvme: null }`,
    `mount: { path: ${mnt}, containers: [bench] }`,
    'log: { level: warn }',
  ].join('\n'),
);
const bin = resolve(import.meta.dirname, '../../bin/weightcache.js');
const node = spawn(process.execPath, [bin, 'node', '--config', join(dir, 'node.yaml')], { stdio: 'inherit' });
const url = `http://127.0.0.1:${port}/v1/objects/bench/model/big.bin`;
for (let i = 0; ; i++) {
  if (spawnSync('curl', ['-sf', `http://127.0.0.1:${port}/readyz`]).status === 0) break;
  if (i > 600) throw new Error('node did not become ready');
  await new Promise((r) => setTimeout(r, 100));
}
const mounted = join(mnt, 'bench', 'model', 'big.bin');

function timed(cmd: string, args: string[]): { s: number; cpuS: number } {
  const cpu0 = treeCpuSeconds(node.pid!);
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { s, cpuS: treeCpuSeconds(node.pid!) - cpu0 };
}
const dropMounted = () => spawnSync('dd', [`if=${mounted}`, 'iflag=nocache', 'count=0']);

timed('curl', ['-sf', '-o', '/dev/null', url]); // warm: every chunk into DRAM
const gb = (mib * 2 ** 20) / 1e9;
const rows: Array<{ door: string; gbps: number; cpuPerGb: number }> = [];
for (let r = 0; r < runs; r++) {
  const h = timed('curl', ['-sf', '-o', '/dev/null', url]);
  rows.push({ door: 'http', gbps: gb / h.s, cpuPerGb: h.cpuS / gb });
  dropMounted();
  const m = timed('dd', [`if=${mounted}`, 'of=/dev/null', 'bs=1M']);
  rows.push({ door: 'mount', gbps: gb / m.s, cpuPerGb: m.cpuS / gb });
}
// The page cache's own speed for the same file through the mount (KEEP_CACHE: repeat reads stay in the kernel).
const pc = timed('dd', [`if=${mounted}`, 'of=/dev/null', 'bs=1M']);
node.kill('SIGTERM');
await new Promise((r) => node.once('exit', r));
const med = (door: string, k: 'gbps' | 'cpuPerGb') => {
  const xs = rows
    .filter((x) => x.door === door)
    .map((x) => x[k])
    .sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
};
const out = {
  fileMiB: mib,
  runs,
  http: { gbps: med('http', 'gbps'), serverCpuSPerGb: med('http', 'cpuPerGb') },
  mount: { gbps: med('mount', 'gbps'), serverCpuSPerGb: med('mount', 'cpuPerGb') },
  ratioMountToHttp: med('mount', 'gbps') / med('http', 'gbps'),
  mountPageCacheGbps: gb / pc.s,
  rows,
};
console.log(JSON.stringify(out, null, 2));
