/**
 * Scenario kind "mount" (docs/performance.md, "FUSE mount"): one sidecar in
 * front of one node, with the FUSE mount on, and a safetensors file of
 * `tensorBytes` in the sidecar's DRAM (warm). Same run, same file:
 *
 * - sequential read through the mount (`dd bs=1M`) vs the same sidecar's
 *   HTTP door (`curl -o /dev/null`); the file's pages are dropped from the
 *   page cache before each mount run (fadvise DONTNEED on that file only),
 *   so every byte goes through FUSE and the read path;
 * - safetensors.safe_open (numpy) + every tensor read, through the mount
 *   (pages dropped first) vs the origin's own copy on local disk with its
 *   page cache warm; and through the mount with its page cache warm.
 *
 * The sidecar's CPU (its process: every thread, the FUSE workers included)
 * per GB beside every figure, and the reader's. Needs /dev/fuse, root and the
 * Python venv with safetensors (npm run test:deps); otherwise "not available"
 * with the reason.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { machineBusySeconds, treeCpuSeconds } from '../cpu.js';
import type { Ctx } from '../ctx.js';
import { warmPageCache } from '../pagecache.js';
import { startWeightcacheProcess, type WeightcacheProcess } from '../peers/weightcache.js';
import { freePort } from '../ports.js';
import { run } from '../processes.js';
import type { Samples } from '../results.js';
import type { MountScenario } from '../scenario.js';
import { runTimed } from '../timed.js';

const VENV_PYTHON = join(
  process.env.WEIGHTCACHE_TEST_VENVS ?? '/var/cache/weightcache',
  'venv-main',
  'bin',
  'python',
);
const CONTAINER = 'mount-bench';
const KEY = 'model/model.safetensors';
const READ_TIMEOUT_MS = 300_000;

interface Fixture {
  /** The file's size. */
  readonly size: number;
  /** Bytes of all its tensors (what safe_open hands back). */
  readonly tensorBytes: number;
}

/** A safetensors file of `count` F32 tensors, `tensorBytes` in all, of random bits; made once. */
function ensureSafetensors(path: string, tensorBytes: number, count: number): Fixture {
  const each = Math.floor(tensorBytes / count / 4) * 4;
  const header: Record<string, unknown> = {};
  for (let i = 0; i < count; i++)
    header[`layers.${i}.weight`] = {
      dtype: 'F32',
      shape: [each / 4],
      data_offsets: [i * each, (i + 1) * each],
    };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const fixture = { size: 8 + json.length + each * count, tensorBytes: each * count };
  if (existsSync(path) && statSync(path).size === fixture.size) return fixture;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    const block = Buffer.allocUnsafe(16 * 2 ** 20);
    for (let left = fixture.tensorBytes; left > 0; left -= block.length) {
      const n = Math.min(block.length, left);
      randomFillSync(block, 0, n);
      writeSync(fd, block, 0, n);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return fixture;
}

/** Bytes the sidecar's FUSE workers answered from DRAM themselves so far (/v1/status). */
async function fastBytes(p: WeightcacheProcess): Promise<number> {
  const s = (await (await fetch(`${p.url}/v1/status`)).json()) as { mount?: { fastBytes?: number } };
  return s.mount?.fastBytes ?? 0;
}

/** Bytes the sidecar's read path has served so far (every source). */
async function served(p: WeightcacheProcess): Promise<number> {
  let n = 0;
  for (const [k, v] of await p.metrics()) if (k.startsWith('weightcache_served_bytes_total')) n += v;
  return n;
}

interface Read {
  /** Wall seconds of the read itself. */
  readonly s: number;
  readonly clientCpuS: number;
}

/** Runs the scenario; returns why it cannot run, or null. */
export async function runMount(s: MountScenario, ctx: Ctx, samples: Samples): Promise<string | null> {
  if (!existsSync('/dev/fuse') || process.getuid?.() !== 0)
    return 'mounting FUSE needs /dev/fuse and root (CAP_SYS_ADMIN)';
  if (!existsSync(VENV_PYTHON)) return `no ${VENV_PYTHON} with safetensors (npm run test:deps)`;
  const file = join(ctx.originRoot, CONTAINER, KEY);
  ctx.log(`fixture: ${file}`);
  const fx = ensureSafetensors(file, s.tensorBytes, s.tensors);
  const gb = fx.size / 1e9;
  const transport = `127.0.0.1:${await freePort()}`;
  const origin = { type: 'fs', fs: { root: ctx.originRoot } };
  const cache = (dramBytes: number) => ({
    chunkSize: s.chunkBytes,
    dram: { maxBytes: dramBytes },
    nvme: null,
  });
  await startWeightcacheProcess({
    role: 'node',
    workDir: ctx.workDir,
    config: {
      origin,
      cache: cache(64 * 2 ** 20),
      transport: { listen: transport },
      cluster: { self: transport, members: { static: [transport] } },
    },
  });
  const mnt = join(ctx.workDir, 'mnt');
  const sidecar = await startWeightcacheProcess({
    role: 'sidecar',
    workDir: ctx.workDir,
    config: {
      http: { metricsCache: 0 },
      origin,
      cache: cache(fx.size + 256 * 2 ** 20),
      cluster: { members: { static: [transport] } },
      sidecar: { socket: join(ctx.workDir, 'sidecar.sock') },
      mount: { path: mnt, containers: [CONTAINER], listInterval: '1h' },
    },
  });
  const url = `${sidecar.url}/v1/objects/${CONTAINER}/${KEY}`;
  const mounted = join(mnt, CONTAINER, KEY);
  const dropMounted = () => spawnSync('dd', [`if=${mounted}`, 'iflag=nocache', 'count=0']);

  const timed = async (cmd: string, args: string[]): Promise<Read> => {
    const t = await runTimed(cmd, args, READ_TIMEOUT_MS);
    if (t.exitError) throw new Error(`${cmd}: ${t.exitError}`);
    return { s: t.wallS, clientCpuS: t.cores * t.wallS };
  };
  const safeOpen = async (path: string): Promise<Read> => {
    const { stdout } = await run(VENV_PYTHON, [join(import.meta.dirname, 'safe_open_read.py'), path], {
      timeoutMs: READ_TIMEOUT_MS,
    });
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      seconds: number;
      cpuSeconds: number;
      bytes: number;
    };
    if (r.bytes !== fx.tensorBytes)
      throw new Error(`safe_open read ${r.bytes} tensor bytes, not ${fx.tensorBytes}`);
    return { s: r.seconds, clientCpuS: r.cpuSeconds };
  };
  /** One read, with the sidecar's CPU and the bytes its read path served meanwhile (returned). */
  const measure = async (c: string, server: string, read: () => Promise<Read>): Promise<number> => {
    const cpu0 = treeCpuSeconds(sidecar.pid);
    const bytes0 = await served(sidecar);
    const busy0 = machineBusySeconds();
    const t0 = performance.now();
    const r = await read();
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuS = treeCpuSeconds(sidecar.pid) - cpu0;
    // What the rest of the machine (other work sharing these cores) used meanwhile, in cores.
    const other = (machineBusySeconds() - busy0 - serverCpuS - r.clientCpuS) / wallS;
    samples.add(c, server, 'other CPU', 'cores', Math.max(0, other));
    samples.add(c, server, 'GB/s', 'GB/s', gb / r.s);
    samples.add(c, server, 'CPU per GB', 's/GB', serverCpuS / gb);
    samples.add(c, server, 'client CPU per GB', 's/GB', r.clientCpuS / gb);
    return (await served(sidecar)) - bytes0;
  };

  ctx.log('warming the sidecar: every chunk into its DRAM');
  await timed('curl', ['-sf', '-o', '/dev/null', url]);
  await timed('dd', [`if=${mounted}`, 'of=/dev/null', 'bs=1M']);
  const mib = Math.round(fx.size / 2 ** 20);
  const seq = `sequential read, ${mib} MiB, warm`;
  const st = `safe_open + every tensor, ${mib} MiB`;
  let bypassed = 0;
  let mountBytes = 0;
  const fast0 = await fastBytes(sidecar);
  for (let i = 0; i < s.repeats; i++) {
    ctx.log(`run ${i + 1}/${s.repeats}`);
    await measure(seq, 'sidecar HTTP door (curl)', () => timed('curl', ['-sf', '-o', '/dev/null', url]));
    dropMounted();
    const m = await measure(seq, 'weightcache mount (dd bs=1M)', () =>
      timed('dd', [`if=${mounted}`, 'of=/dev/null', 'bs=1M']),
    );
    if (m < 0.9 * fx.size) bypassed++;
    mountBytes += m;
    warmPageCache(file);
    await measure(st, 'local disk (page cache warm)', () => safeOpen(file));
    dropMounted();
    const t = await measure(st, 'weightcache mount', () => safeOpen(mounted));
    if (t < 0.9 * fx.size) bypassed++;
    mountBytes += t;
    await measure(st, 'weightcache mount, page cache warm', () => safeOpen(mounted));
  }
  ctx.notes.push(
    'one sidecar (mount on, every chunk in its DRAM) in front of one node; "CPU per GB" is the sidecar process (every thread, the FUSE workers included), "client CPU per GB" the reader (dd, curl, or the Python process)',
    'mount runs start with the file dropped from the page cache (fadvise DONTNEED), so each byte crosses FUSE and the read path; "page cache warm" re-reads what the kernel kept (KEEP_CACHE)',
  );
  const fast = (await fastBytes(sidecar)) - fast0;
  ctx.notes.push(
    `of the bytes the mount runs read through the sidecar, ${Math.round((100 * fast) / Math.max(1, mountBytes))}% were answered by its FUSE workers from DRAM without JavaScript`,
  );
  if (bypassed > 0)
    ctx.notes.push(
      `${bypassed} mount run(s) read < 90% of the file through the read path: pages were not all dropped`,
    );
  return null;
}
