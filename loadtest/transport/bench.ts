/**
 * Transport benchmark: whole-chunk reads of 4 MiB and 64 KiB between two
 * processes on loopback, over 1 and 16 connections, from DRAM buffers
 * (writev), chunk files (sendfile), the native DRAM store and v2 chunk files
 * read and verified on the I/O thread (native NVMe); beside iperf3 on the same machine in
 * the same run as the ceiling. Prints a table and writes
 * loadtest/results/transport.json.
 *
 *   node --import tsx loadtest/transport/bench.ts [--seconds 3] [--runs 3]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChunkName } from '../../src/chunk/name.js';
import { binding } from '../../src/transport/binding.js';
import { TransportClient } from '../../src/transport/index.js';
import { buildRangeClient, runRangeClient } from '../client/clients.js';
import { treeCpuSeconds } from '../cpu.js';
import { startNginx } from '../peers/nginx.js';

interface Row {
  scenario: string;
  case: string;
  server: string;
  metric: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
}

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, runs: { type: 'string', default: '3' } },
});
const SECONDS = Number(values.seconds);
const RUNS = Number(values.runs);
const quiet = { info() {}, warn() {} };
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function startServer(): Promise<{
  proc: ChildProcess;
  port: number;
  nvmePort: number;
  stats(): Promise<Record<string, number>>;
}> {
  // Run from source (tsx) or from dist/ (compiled .js): start the server the same way.
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(`./bench-server.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const args = fromSource ? ['--import', 'tsx', file] : [file];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  const lines = createInterface({ input: proc.stdout! });
  const waiters: ((l: Record<string, unknown>) => void)[] = [];
  lines.on('line', (l) => {
    if (l.startsWith('{"')) waiters.shift()?.(JSON.parse(l) as Record<string, unknown>);
  });
  const next = () => new Promise<Record<string, unknown>>((r) => waiters.push(r));
  return next().then((first) => ({
    proc,
    port: first.listening as number,
    nvmePort: first.nvme as number,
    stats: async () => {
      const p = next();
      proc.kill('SIGUSR2');
      return (await p).stats as Record<string, number>;
    },
  }));
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function runCase(port: number, size: number, connections: number, key: string, serverPid: number) {
  const client = new TransportClient({
    host: '127.0.0.1',
    port,
    connections,
    timeoutMs: 30_000,
    logger: quiet,
  });
  const name: ChunkName = {
    originId: 'bench',
    container: 'c',
    key: key === 'native' || key === 'nvme' ? `${key}-${size}` : key,
    etag: 'v1',
    size,
    chunkSize: size,
    index: 0,
  };
  // Enough requests in flight to keep every connection busy, few enough not to measure queueing.
  const window = Math.max(4, connections * (size >= 1 << 20 ? 2 : 8));
  await Promise.all(Array.from({ length: window }, () => client.readChunk(name, 0, size))); // warm up
  const lat: number[] = [];
  let bytes = 0;
  const cpu0 = treeCpuSeconds(serverPid);
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const r = await client.readChunk(name, 0, size);
        lat.push(performance.now() - t);
        bytes += r.data.length;
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  const serverCpuS = treeCpuSeconds(serverPid) - cpu0;
  await client.close();
  lat.sort((a, b) => a - b);
  return {
    gbps: bytes / secs / 1e9,
    // The serving process's CPU (every thread, the addon's I/O thread included) per GB it sent.
    cpuPerGb: serverCpuS / (bytes / 1e9),
    rps: lat.length / secs,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
  };
}

function iperf3(streams: number): number[] | string {
  if (spawnSync('iperf3', ['--version']).error) return 'iperf3 not installed (apt-get install -y iperf3)';
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const port = String(15201 + i);
    const srv = spawn('iperf3', ['-s', '-1', '-p', port], { stdio: 'ignore' });
    children.add(srv);
    spawnSync('sleep', ['0.3']);
    // iperf3 reads -t as an integer, and 0 means forever.
    const secs = String(Math.max(1, Math.round(SECONDS)));
    const c = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', port, '-t', secs, '-P', String(streams), '-J'], {
      encoding: 'utf8',
    });
    srv.kill();
    const j = JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } };
    out.push(j.end.sum_received.bits_per_second / 8 / 1e9);
  }
  return out;
}

function summarize(
  scenario: string,
  kase: string,
  server: string,
  metric: string,
  unit: string,
  runs: number[],
): Row {
  const s = [...runs].sort((a, b) => a - b);
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    scenario,
    case: kase,
    server,
    metric,
    unit,
    median: r3(s[Math.floor(s.length / 2)]!),
    min: r3(s[0]!),
    max: r3(s.at(-1)!),
    runs: runs.map(r3),
  };
}

const rows: Row[] = [];
const load0 = loadavg()[0]!;
// iperf3 runs before and after the transport cases, and its rows span both: on a shared machine
// one measurement at one moment is not a ceiling.
const iperfBefore = [1, 16].map((streams) => iperf3(streams));
const server = await startServer();
try {
  for (const size of [4 << 20, 64 << 10]) {
    for (const connections of [1, 16]) {
      for (const key of ['buffer', 'native', 'file', 'nvme']) {
        const runs: Awaited<ReturnType<typeof runCase>>[] = [];
        const port = key === 'nvme' ? server.nvmePort : server.port;
        for (let i = 0; i < RUNS; i++)
          runs.push(await runCase(port, size, connections, key, server.proc.pid!));
        const kase = `${size >= 1 << 20 ? '4MiB' : '64KiB'} x${connections}conn`;
        const srv = `weightcache-${
          {
            buffer: 'dram-writev',
            native: 'native-store-writev',
            file: 'file-sendfile',
            nvme: 'native-nvme-verified',
          }[key]
        }`;
        rows.push(
          summarize(
            'transport',
            kase,
            srv,
            'throughput',
            'GB/s',
            runs.map((r) => r.gbps),
          ),
        );
        rows.push(
          summarize(
            'transport',
            kase,
            srv,
            'server CPU per GB',
            'core-s/GB',
            runs.map((r) => r.cpuPerGb),
          ),
        );
        rows.push(
          summarize(
            'transport',
            kase,
            srv,
            'requests',
            'req/s',
            runs.map((r) => r.rps),
          ),
        );
        rows.push(
          summarize(
            'transport',
            kase,
            srv,
            'p50',
            'ms',
            runs.map((r) => r.p50),
          ),
        );
        rows.push(
          summarize(
            'transport',
            kase,
            srv,
            'p99',
            'ms',
            runs.map((r) => r.p99),
          ),
        );
        console.error(`done ${kase} ${srv}`);
      }
    }
  }
  const s = await server.stats();
  const c = binding().transportStats();
  for (const [side, st] of [
    ['server', s],
    ['client', c],
  ] as const) {
    rows.push(
      summarize('transport', 'all', `weightcache-${side}`, 'bytes_copied', 'bytes', [st.bytesCopied ?? -1]),
    );
  }
  rows.push(
    summarize('transport', 'all', 'weightcache-server', 'bytes_writev', 'bytes', [s.bytesWritev ?? 0]),
  );
  rows.push(
    summarize('transport', 'all', 'weightcache-server', 'bytes_sendfile', 'bytes', [s.bytesSendfile ?? 0]),
  );
  // READ_CHUNK answered on the I/O thread from the native store (key native-<size>), without JavaScript.
  rows.push(
    summarize('transport', 'all', 'weightcache-server', 'native_served', 'requests', [s.nativeServed ?? 0]),
  );
  // Of those, read from v2 chunk files and verified on the I/O thread (key nvme-<size>); and the
  // requests that went to JavaScript because the NVMe reads in flight were at their bound.
  rows.push(
    summarize('transport', 'all', 'weightcache-server', 'native_nvme_served', 'requests', [
      s.nativeNvmeServed ?? 0,
    ]),
  );
  rows.push(
    summarize('transport', 'all', 'weightcache-server', 'native_pass_busy', 'requests', [
      s.nativePassBusy ?? 0,
    ]),
  );
  rows.push(
    summarize('transport', 'all', 'weightcache-client', 'bytes_received_direct', 'bytes', [
      c.bytesReceivedDirect,
    ]),
  );
} finally {
  server.proc.kill('SIGTERM');
}
const notes: string[] = [];
// The HTTP peer of issue 16's transport target ("≥ 1.0× the best HTTP peer's bytes/s in the same
// run"): nginx with sendfile serving a page-cached file, the same range sizes and connections, read
// by the C range client (the transport cases' client is the JavaScript TransportClient, slower).
const httpPeer = await (async () => {
  if (spawnSync('nginx', ['-v']).error) return 'nginx not installed (apt-get install -y nginx)';
  const dir = mkdtempSync(join(tmpdir(), 'wc-transport-http-'));
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'nginx'));
  const fileBytes = 256 << 20;
  writeFileSync(join(dir, 'www', 'chunks.bin'), randomBytes(fileBytes));
  const nginx = await startNginx({ root: join(dir, 'www'), workDir: join(dir, 'nginx') });
  try {
    const bin = buildRangeClient(join(dir, 'bin'));
    for (const size of [4 << 20, 64 << 10]) {
      for (const connections of [1, 16]) {
        const gbps: number[] = [];
        const cpuPerGb: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const cpu0 = nginx.pids.reduce((a, pid) => a + treeCpuSeconds(pid), 0);
          const r = await runRangeClient(bin, {
            port: nginx.port,
            targets: [{ path: '/chunks.bin', size: fileBytes }],
            rangeBytes: size,
            conns: connections,
            durationS: SECONDS,
            warmupS: 0.5,
          });
          if (r.error || r.errors > 0) throw new Error(`nginx run: ${r.error || `${r.errors} errors`}`);
          const cpu = nginx.pids.reduce((a, pid) => a + treeCpuSeconds(pid), 0) - cpu0;
          gbps.push(r.bytes / r.seconds / 1e9);
          // The warm-up's CPU counts too: a slight overstatement of nginx's CPU per GB.
          cpuPerGb.push(cpu / (r.bytes / 1e9));
        }
        const kase = `${size >= 1 << 20 ? '4MiB' : '64KiB'} x${connections}conn`;
        rows.push(summarize('transport', kase, 'nginx-http-sendfile', 'throughput', 'GB/s', gbps));
        rows.push(
          summarize('transport', kase, 'nginx-http-sendfile', 'server CPU per GB', 'core-s/GB', cpuPerGb),
        );
        console.error(`done ${kase} nginx-http-sendfile`);
      }
    }
  } finally {
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return null;
})();
if (httpPeer) notes.push(httpPeer);
else
  notes.push(
    "nginx-http-sendfile: the HTTP peer, a 256 MiB page-cached file read in ranges of the case's size " +
      'by the C range client over as many connections; CPU per GB includes its 0.5 s warm-up',
  );
const iperfAfter = [1, 16].map((streams) => iperf3(streams));
[1, 16].forEach((streams, i) => {
  const before = iperfBefore[i]!;
  const after = iperfAfter[i]!;
  if (typeof before === 'string' || typeof after === 'string') notes.push(String(before));
  else
    rows.push(
      summarize('transport', `tcp x${streams}stream`, 'iperf3', 'throughput', 'GB/s', [...before, ...after]),
    );
});
notes.push('iperf3 rows: runs before the transport cases, then runs after them');

console.log('| case | server | metric | median | min | max | unit |');
console.log('|---|---|---|---:|---:|---:|---|');
for (const r of rows)
  console.log(`| ${r.case} | ${r.server} | ${r.metric} | ${r.median} | ${r.min} | ${r.max} | ${r.unit} |`);
notes.push(
  'requests in flight: 2 per connection for 4 MiB, 8 per connection for 64 KiB (at least 4); ' +
    'p50/p99 include that queueing (Little: latency = window / throughput)',
);
notes.push(
  `${cpus().length} cores (${cpus()[0]?.model}); 1-min load average ${load0.toFixed(1)} at start, ` +
    `${loadavg()[0]!.toFixed(1)} at end (other processes share this machine)`,
);
for (const n of notes) console.log(`note: ${n}`);
const outDir = fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}transport.json`, `${JSON.stringify(rows, null, 2)}\n`);
process.exit(0);
