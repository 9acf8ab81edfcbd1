/**
 * Fleet: 8 clients on 4 sidecars load one model (the 224 MiB demo checkpoint:
 * two safetensors shards and three small JSON files) through 3 nodes from an
 * HTTP origin (nginx serving the files from the page cache). Baseline in the
 * same run: one client reading the model from that nginx alone, with the same
 * client (rangeclient --once: every 4 MiB range of every file once, over 4
 * connections, every byte compared with the origin's file).
 *
 * Figures: the fleet's wall time (all 8 clients done, caches cold at the
 * start) and its ratio to the baseline (target ≤ 1.5×), origin bytes / model
 * bytes (must be 1.00: one origin pull for the fleet), and the CPU seconds per
 * GB delivered to the clients of the nodes and of the sidecars, with the
 * transport's native counters beside them.
 *
 *   npm run loadtest -- fleet
 *   FLEET_RUNS=3 FLEET_PROFILE=/tmp/prof node node_modules/tsx/dist/cli.mjs loadtest/cluster/fleet-load.ts
 *
 * FLEET_PROFILE=DIR runs every weightcache process with `--cpu-prof` into DIR
 * (node0-…, sidecar0-…): where the time goes, per hop.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedDemo } from '../../src/demo/seed.js';
import { buildRangeClient } from '../client/clients.js';
import { treeCpuSeconds } from '../cpu.js';
import { startNginx } from '../peers/nginx.js';
import { stopAll } from '../processes.js';
import { ensureBuilt, REPO, row, startFleet, sumMetric } from './fleet.js';

const CLIENTS = Number(process.env.FLEET_CLIENTS ?? 8);
const SIDECARS = Number(process.env.FLEET_SIDECARS ?? 4);
const NODES = 3;
const RUNS = Number(process.env.FLEET_RUNS ?? 2);
const CONNS_PER_CLIENT = 4;
const RANGE_BYTES = 4 * 2 ** 20;
const MIN_MODEL_BYTES = 224 * 2 ** 20;
/** The sidecars' door: `native` answers DRAM hits on its I/O threads (docs/native-http-door.md). */
const SIDECAR_DOOR = process.env.FLEET_SIDECAR_DOOR ?? 'native';
const PROFILE_DIR = process.env.FLEET_PROFILE ?? '';

interface ClientRun {
  readonly seconds: number;
  readonly bytes: number;
  readonly cpuS: number;
}

/** One rangeclient reading every range of the model once from host:port; fails on any error or wrong byte. */
function readModel(
  bin: string,
  port: number,
  prefix: string,
  dir: string,
  files: readonly { name: string; size: number }[],
): Promise<ClientRun> {
  const args = ['--port', String(port), '--once', '--range', String(RANGE_BYTES)];
  args.push('--conns', String(CONNS_PER_CLIENT), '--verify', `${prefix}=${dir}`, '--timeout', '60');
  for (const f of files) args.push('--target', `${prefix}${f.name}:${f.size}`);
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return reject(new Error(`rangeclient printed no result: ${err.slice(-500)}`));
      const j = JSON.parse(line) as {
        seconds: number;
        bytes: number;
        errors: number;
        complete: boolean;
        error: string;
        wrong_bytes: number;
        cpu_s: number;
      };
      if (j.errors > 0 || !j.complete || j.wrong_bytes > 0) {
        return reject(
          new Error(
            `client on port ${port}: ${j.error || 'incomplete'} (errors ${j.errors}, wrong bytes ${j.wrong_bytes})`,
          ),
        );
      }
      resolve({ seconds: j.seconds, bytes: j.bytes, cpuS: j.cpu_s });
    });
  });
}

async function main(): Promise<void> {
  ensureBuilt();
  const work = mkdtempSync(join(process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? tmpdir(), 'fleet-'));
  try {
    const root = join(work, 'origin');
    const seeded = await seedDemo(root);
    if (seeded.bytes < MIN_MODEL_BYTES) throw new Error(`model of ${seeded.bytes} bytes is under 224 MiB`);
    const files = seeded.files.map((name) => ({ name, size: statSync(join(seeded.dir, name)).size }));
    const bin = process.env.WEIGHTCACHE_LOADTEST_CLIENT ?? buildRangeClient(join(work, 'bin'));
    mkdirSync(join(work, 'nginx'));
    const nginx = await startNginx({ root, workDir: join(work, 'nginx') });
    const direct = '/demo/tiny-llama/';
    const viaCache = '/v1/objects/demo/tiny-llama/';
    const mib = Math.round(seeded.bytes / 2 ** 20);
    const c = `${CLIENTS} clients on ${SIDECARS} sidecars load a ${mib} MiB model`;
    const server = `weightcache (${NODES} nodes, ${SIDECARS} sidecars, http.door ${SIDECAR_DOOR})`;
    const m = {
      time: [] as number[],
      base: [] as number[],
      ratio: [] as number[],
      origin: [] as number[],
      nodeCpu: [] as number[],
      sidecarCpu: [] as number[],
      nginxCpu: [] as number[],
      clientCpu: [] as number[],
      nativeShare: [] as number[],
      load: [] as number[],
    };
    // The origin's files in the page cache, as they are for every run below.
    await readModel(bin, nginx.port, direct, seeded.dir, files);
    for (let run = 0; run < RUNS; run++) {
      m.load.push(loadavg()[0]!);
      const b = await readModel(bin, nginx.port, direct, seeded.dir, files);
      m.base.push(b.seconds);

      const dir = join(work, `run${run}`);
      const fleet = await startFleet(dir, root, NODES, SIDECARS, {
        origin: { type: 'http', http: { baseUrl: `http://127.0.0.1:${nginx.port}` } },
        sidecar: {
          http: { listen: '127.0.0.1:0', door: SIDECAR_DOOR },
          cache: { dram: { maxBytes: '512MiB' }, nvme: null },
        },
        execArgv: PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(dir, 'prof')] : [],
      });
      try {
        const cpu = (ps: { proc: { pid?: number } }[]) =>
          ps.reduce((s, p) => s + treeCpuSeconds(p.proc.pid!), 0);
        const n0 = cpu(fleet.nodes);
        const s0 = cpu(fleet.sidecars);
        const g0 = treeCpuSeconds(nginx.pids[0]!);
        const t0 = performance.now();
        const clients = await Promise.all(
          Array.from({ length: CLIENTS }, (_, i) => {
            const port = Number(new URL(fleet.sidecars[i % SIDECARS]!.url).port);
            return readModel(bin, port, viaCache, seeded.dir, files);
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        const gb = clients.reduce((s, r) => s + r.bytes, 0) / 1e9;
        m.time.push(seconds);
        m.ratio.push(seconds / b.seconds);
        m.nodeCpu.push((cpu(fleet.nodes) - n0) / gb);
        m.sidecarCpu.push((cpu(fleet.sidecars) - s0) / gb);
        m.nginxCpu.push((treeCpuSeconds(nginx.pids[0]!) - g0) / gb);
        m.clientCpu.push(clients.reduce((s, r) => s + r.cpuS, 0) / gb);
        const all = [...fleet.nodes, ...fleet.sidecars];
        m.origin.push((await sumMetric(all, 'weightcache_origin_bytes_total')) / seeded.bytes);
        // Payload bytes the nodes sent, and the part the I/O thread answered from the store itself.
        const sent = await sumMetric(fleet.nodes, 'weightcache_transport_payload_bytes_sent_total');
        const native = await sumMetric(fleet.nodes, 'weightcache_transport_native_served_bytes_total');
        m.nativeShare.push(sent > 0 ? native / sent : 0);
        console.log(
          `run ${run}: fleet ${seconds.toFixed(2)} s, one client from nginx ${b.seconds.toFixed(2)} s, ` +
            `origin ${m.origin.at(-1)!.toFixed(2)}x, load ${m.load.at(-1)!.toFixed(1)}`,
        );
      } finally {
        await fleet.stop(PROFILE_DIR !== '');
      }
      if (PROFILE_DIR) keepProfiles(join(dir, 'prof'), PROFILE_DIR, run, fleet);
      rmSync(dir, { recursive: true, force: true });
    }
    const base = 'nginx (1 client, origin alone)';
    const note = `load average ${m.load.map((x) => x.toFixed(1)).join(', ')}`;
    const rows = [
      row(c, server, 'fill time', 's', m.time, note),
      row(c, base, 'fill time', 's', m.base, 'one client reading the model from the origin alone'),
      row(c, server, 'fill time / one client from origin', 'x', m.ratio, 'target ≤ 1.5'),
      row(c, server, 'origin bytes / model', 'x', m.origin),
      row(
        c,
        base,
        'origin bytes / model',
        'x',
        m.base.map(() => 1),
      ),
      row(c, server, 'nodes CPU per GB delivered', 'core-s/GB', m.nodeCpu),
      row(c, server, 'sidecars CPU per GB delivered', 'core-s/GB', m.sidecarCpu),
      row(c, server, 'origin (nginx) CPU per GB delivered', 'core-s/GB', m.nginxCpu),
      row(c, server, 'clients CPU per GB delivered', 'core-s/GB', m.clientCpu),
      row(c, server, 'node payload bytes sent without JavaScript', 'share', m.nativeShare),
    ];
    writeFileSync(join(REPO, 'loadtest/results/fleet-rows.json'), `${JSON.stringify(rows, null, 2)}\n`);
    for (const r of rows) console.log(`${r.server.padEnd(52)} ${r.metric.padEnd(38)} ${r.median} ${r.unit}`);
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Moves the run's .cpuprofile files to `to`, named by role and index. */
function keepProfiles(
  from: string,
  to: string,
  run: number,
  fleet: { nodes: { proc: { pid?: number } }[]; sidecars: { proc: { pid?: number } }[] },
): void {
  mkdirSync(to, { recursive: true });
  const roles = new Map<number, string>();
  for (const [i, p] of fleet.nodes.entries()) roles.set(p.proc.pid!, `node${i}`);
  for (const [i, p] of fleet.sidecars.entries()) roles.set(p.proc.pid!, `sidecar${i}`);
  let files: string[] = [];
  try {
    files = readdirSync(from);
  } catch {
    return;
  }
  for (const f of files) {
    const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]);
    renameSync(join(from, f), join(to, `run${run}-${roles.get(pid) ?? `pid${pid}`}.cpuprofile`));
  }
}

await main();
