/**
 * RESP benchmark (issue 7): GETRANGE 1 MiB, GETRANGE 64 KiB and GET 4 KiB,
 * weightcache's RESP door — the JavaScript door ('weightcache') and the native
 * door ('weightcache-native', resp.door: native) — vs redis-server holding the
 * same bytes, with redis-benchmark as the client for all (same flags, loopback,
 * high ports). Each run also takes the server's CPU time (its process tree,
 * /proc), reported as cores busy and CPU seconds per GB of values served.
 * Runs alternate between the servers so drift hits both alike. Every child
 * is stopped by its PID and every run is bounded in time.
 *
 * The native door runs with one I/O thread per core the client leaves free
 * (cores − 1, at least 1: redis-benchmark is one busy thread on the same
 * machine, and redis-server answers on one thread): an I/O thread more than
 * the free cores only adds sleeps and wakeups per command (docs/performance.md).
 *
 * Rows {scenario, case, server, metric, unit, median, min, max, runs} go to
 * loadtest/results/resp.json (read by the loadtest runner's resp-getrange
 * scenario); a table goes to stdout.
 *
 *   node node_modules/tsx/dist/cli.mjs loadtest/resp/bench.ts [--runs 3]
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { treeCpuSeconds } from '../cpu.js';
import type { Row } from '../results.js';

const REPO = resolve(import.meta.dirname, '../..');
const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3;
const CLIENTS = 8;
const RUN_TIMEOUT_MS = 30_000;
/** The native door's I/O threads: the cores the client leaves free. */
const NATIVE_THREADS = Math.max(1, cpus().length - 1);

interface Case {
  readonly name: string;
  readonly key: string;
  readonly bytes: number;
  readonly command: string[];
  /** Requests per run: sized so a run takes about a second or two here. */
  readonly requests: number;
}

const MiB = 2 ** 20;
const CASES: Case[] = [
  {
    name: 'GETRANGE 1 MiB',
    key: 'bench/shard.bin',
    bytes: MiB,
    command: ['GETRANGE', 'bench/shard.bin', '0', String(MiB - 1)],
    requests: 3000,
  },
  {
    name: 'GETRANGE 64 KiB',
    key: 'bench/shard.bin',
    bytes: 64 * 1024,
    command: ['GETRANGE', 'bench/shard.bin', String(MiB), String(MiB + 65535)],
    requests: 30_000,
  },
  {
    name: 'GET 4 KiB',
    key: 'bench/small.bin',
    bytes: 4096,
    command: ['GET', 'bench/small.bin'],
    requests: 100_000,
  },
];

interface Child {
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

function child(cmd: string, args: string[], ready: RegExp): Promise<{ c: Child; match: RegExpMatchArray }> {
  const proc = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    process.kill(proc.pid, 'SIGTERM');
    const t = setTimeout(() => proc.pid !== undefined && process.kill(proc.pid, 'SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  };
  return new Promise((res, rej) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) res({ c: { proc, stop }, match: m });
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('error', rej);
    proc.once('exit', (code) => rej(new Error(`${cmd} exited (${code}) before ready: ${out.slice(-500)}`)));
    setTimeout(() => rej(new Error(`${cmd} not ready in 30 s`)), 30_000).unref();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  // High ports, loopback only.
  for (let p = 20_000 + Math.floor(Math.random() * 20_000); ; p++) {
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(p, '127.0.0.1', () => r(true));
    });
    if (ok) {
      await new Promise<void>((r) => s.close(() => r()));
      return p;
    }
  }
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** The server's CPU seconds over the run, and the run's wall seconds. */
  cpuS: number;
  wallS: number;
}

/** One redis-benchmark run; --csv gives rps and latency percentiles in ms. */
async function benchmark(port: number, pid: number, c: Case): Promise<Sample> {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-c',
    String(CLIENTS),
    '-n',
    String(c.requests),
    '--csv',
    ...c.command,
  ];
  const cpuBefore = treeCpuSeconds(pid);
  const t0 = performance.now();
  const proc = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const timer = setTimeout(() => proc.pid !== undefined && process.kill(proc.pid, 'SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((r) => proc.once('close', r));
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = treeCpuSeconds(pid) - cpuBefore;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`redis-benchmark exited ${code}: ${(err || out).slice(-300)}`);
  const lines = out.trim().split('\n');
  const header = lines[0]!.split(',').map((s) => s.replace(/"/g, ''));
  const row = lines[lines.length - 1]!.split(',').map((s) => s.replace(/"/g, ''));
  const col = (name: string) => Number(row[header.indexOf(name)]);
  return { rps: col('rps'), p50: col('p50_latency_ms'), p99: col('p99_latency_ms'), cpuS, wallS };
}

function med(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? tmpdir(), 'wc-resp-bench-'));
  const children: Child[] = [];
  const clients: Redis[] = [];
  try {
    const shard = randomBytes(4 * MiB);
    const small = randomBytes(4096);
    await mkdir(join(work, 'origin', 'bench'), { recursive: true });
    await writeFile(join(work, 'origin', 'bench', 'shard.bin'), shard);
    await writeFile(join(work, 'origin', 'bench', 'small.bin'), small);

    const serve = async (door: 'js' | 'native') => {
      const args = [
        join(REPO, 'node_modules/tsx/dist/cli.mjs'),
        'loadtest/resp/serve.ts',
        join(work, 'origin'),
        door,
      ];
      if (door === 'native') args.push(String(NATIVE_THREADS));
      const started = await child(process.execPath, args, /resp (\d+)/);
      children.push(started.c);
      return { port: Number(started.match[1]), pid: started.c.proc.pid! };
    };
    const wc = await serve('js');
    const wcNative = await serve('native');
    const wcPort = wc.port;
    const redisPort = await freePort();
    const rs = await child(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work],
      /Ready to accept connections/,
    );
    children.push(rs.c);

    // Same bytes in both; weightcache's chunks warmed into DRAM first (this measures hits, not the origin).
    const r = new Redis({ port: redisPort, host: '127.0.0.1' });
    const w = new Redis({ port: wcPort, host: '127.0.0.1' });
    const wn = new Redis({ port: wcNative.port, host: '127.0.0.1' });
    clients.push(r, w, wn);
    await r.set('bench/shard.bin', shard);
    await r.set('bench/small.bin', small);
    await w.call('WC.PREFETCH', 'bench/');
    await wn.call('WC.PREFETCH', 'bench/');
    for (const c of CASES) {
      const [a, b, n] = await Promise.all([
        w.callBuffer(...(c.command as [string, ...string[]])),
        r.callBuffer(...(c.command as [string, ...string[]])),
        wn.callBuffer(...(c.command as [string, ...string[]])),
      ]);
      if (!Buffer.from(a as Buffer).equals(b as Buffer) || !Buffer.from(n as Buffer).equals(b as Buffer))
        throw new Error(`${c.name}: the servers answer different bytes`);
    }

    const servers = [
      { name: 'weightcache', port: wcPort, pid: wc.pid },
      { name: 'weightcache-native', port: wcNative.port, pid: wcNative.pid },
      { name: 'redis-server', port: redisPort, pid: rs.c.proc.pid! },
    ];
    const samples = new Map<string, Sample[]>();
    for (const c of CASES) {
      for (let run = 0; run < RUNS; run++) {
        // Alternate which server goes first, so neither always runs on a warmer machine.
        const order = run % 2 === 0 ? servers : [...servers].reverse();
        for (const s of order) {
          const got = await benchmark(s.port, s.pid, c);
          const k = `${c.name}|${s.name}`;
          samples.set(k, [...(samples.get(k) ?? []), got]);
          process.stdout.write(
            `${c.name.padEnd(16)} ${s.name.padEnd(18)} run ${run + 1}: ${got.rps.toFixed(0)} req/s p50 ${got.p50} ms p99 ${got.p99} ms, server ${(got.cpuS / got.wallS).toFixed(2)} cores\n`,
          );
        }
      }
    }

    const rows: Row[] = [];
    for (const c of CASES) {
      for (const s of servers) {
        const runs = samples.get(`${c.name}|${s.name}`)!;
        const metrics: Array<[string, string, number[]]> = [
          ['req/s', 'req/s', runs.map((x) => x.rps)],
          ['GB/s', 'GB/s', runs.map((x) => (x.rps * c.bytes) / 1e9)],
          ['p50', 'ms', runs.map((x) => x.p50)],
          ['p99', 'ms', runs.map((x) => x.p99)],
          ['server CPU', 'cores', runs.map((x) => x.cpuS / x.wallS)],
          // Value bytes only (what the client asked for): CPU seconds the server spent per GB of them.
          ['CPU per GB', 'core-s/GB', runs.map((x) => x.cpuS / ((x.rps * x.wallS * c.bytes) / 1e9))],
        ];
        for (const [metric, unit, xs] of metrics) {
          rows.push({
            scenario: 'resp-getrange',
            case: c.name,
            server: s.name,
            metric,
            unit,
            median: med(xs),
            min: Math.min(...xs),
            max: Math.max(...xs),
            runs: xs,
            note: `redis-benchmark -c ${CLIENTS} -n ${c.requests}, loopback, ${cpus().length} cores shared by client and server${s.name === 'weightcache-native' ? `, resp.threads ${NATIVE_THREADS}` : ''}`,
          });
        }
      }
    }
    await mkdir(join(REPO, 'loadtest/results'), { recursive: true });
    await writeFile(join(REPO, 'loadtest/results/resp.json'), `${JSON.stringify(rows, null, 2)}\n`);
    process.stdout.write(
      '\ncase              server              req/s (median)   GB/s    p50 ms  p99 ms  cores  CPU s/GB\n',
    );
    for (const c of CASES) {
      for (const s of servers) {
        const get = (m: string) =>
          rows.find((x) => x.case === c.name && x.server === s.name && x.metric === m)!.median;
        process.stdout.write(
          `${c.name.padEnd(17)} ${s.name.padEnd(19)} ${get('req/s').toFixed(0).padStart(14)} ${get('GB/s').toFixed(3).padStart(7)} ${String(get('p50')).padStart(8)} ${String(get('p99')).padStart(7)} ${get('server CPU').toFixed(2).padStart(6)} ${get('CPU per GB').toFixed(3).padStart(9)}\n`,
        );
      }
    }
  } finally {
    for (const cl of clients) cl.disconnect();
    for (const c of children.reverse()) await c.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
