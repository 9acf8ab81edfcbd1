/**
 * Fleet: 8 clients on 4 sidecars load one model (the 224 MiB demo checkpoint:
 * two safetensors shards and three small JSON files) through 3 nodes from an
 * HTTP origin (nginx serving the files from the page cache). Baseline in the
 * same run: one client reading the model from that nginx alone, with the same
 * client (rangeclient --once: every 4 MiB range of every file once, over 4
 * connections, every byte compared with the origin's file).
 *
 * Two phases per run: cold (every cache empty), then warm (the nodes hold
 * the model; 4 new sidecars with empty caches, as hosts joining the fleet).
 * Figures: the fleet's wall time (all 8 clients done) and its ratio to the
 * baseline (target ≤ 1.5×), origin bytes / model
 * bytes (must be 1.00: one origin pull for the fleet), and the CPU seconds per
 * GB delivered to the clients of the nodes and of the sidecars, with the
 * transport's native counters beside them.
 *
 *   npm run loadtest -- fleet
 *   FLEET_RUNS=3 FLEET_PROFILE=/tmp/prof node node_modules/tsx/dist/cli.mjs loadtest/cluster/fleet-load.ts
 *
 * FLEET_NATIVE_READS=0 turns the nodes' transport.nativeReads off (before/after).
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
import { ensureBuilt, type Proc, REPO, row, startFleet, sumMetric } from './fleet.js';

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
/** FLEET_NATIVE_READS=0: the nodes' transport.nativeReads off (every READ_CHUNK through JavaScript), for a before/after. */
const NATIVE_READS = process.env.FLEET_NATIVE_READS !== '0';
/** FLEET_RECEIVE_IN_PLACE=1: the sidecars' sidecar.receiveInPlace on (peer chunks kept without a copy). */
const RECEIVE_IN_PLACE = process.env.FLEET_RECEIVE_IN_PLACE === '1';

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
    // 'close', not 'exit': the result line may still be in the pipe when the process exits.
    p.once('close', () => {
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

interface Figures {
  readonly c: string;
  readonly time: number[];
  readonly ratio: number[];
  readonly origin: number[];
  readonly nodeCpu: number[];
  readonly sidecarCpu: number[];
  readonly nginxCpu: number[];
  readonly clientCpu: number[];
  readonly nativeShare: number[];
  readonly passed: string[];
}

function newFigures(c: string): Figures {
  return {
    c,
    time: [],
    ratio: [],
    origin: [],
    nodeCpu: [],
    sidecarCpu: [],
    nginxCpu: [],
    clientCpu: [],
    nativeShare: [],
    passed: [],
  };
}

type FleetProcs = { nodes: Proc[]; sidecars: Proc[] };

/** Runs the clients `start` starts at once; adds wall time, CPU per GB and the nodes' native share to `f`. */
async function loadPhase(
  fleet: FleetProcs,
  f: Figures,
  baseSeconds: number,
  start: () => Promise<ClientRun>[],
): Promise<void> {
  const cpu = (ps: Proc[]) => ps.reduce((s, p) => s + treeCpuSeconds(p.proc.pid!), 0);
  const nativeBytes = () => sumMetric(fleet.nodes, 'weightcache_transport_native_served_bytes_total');
  const sentBytes = () => sumMetric(fleet.nodes, 'weightcache_transport_payload_bytes_sent_total');
  const [sent0, native0] = [await sentBytes(), await nativeBytes()];
  const n0 = cpu(fleet.nodes);
  const s0 = cpu(fleet.sidecars);
  const g0 = treeCpuSeconds(nginxPid);
  const t0 = performance.now();
  const clients = await Promise.all(start());
  const seconds = (performance.now() - t0) / 1000;
  const gb = clients.reduce((s, r) => s + r.bytes, 0) / 1e9;
  f.time.push(seconds);
  f.ratio.push(seconds / baseSeconds);
  f.nodeCpu.push((cpu(fleet.nodes) - n0) / gb);
  f.sidecarCpu.push((cpu(fleet.sidecars) - s0) / gb);
  f.nginxCpu.push((treeCpuSeconds(nginxPid) - g0) / gb);
  f.clientCpu.push(clients.reduce((s, r) => s + r.cpuS, 0) / gb);
  // Payload bytes the nodes sent, and the part the I/O thread answered from the store itself.
  const sent = (await sentBytes()) - sent0;
  f.nativeShare.push(sent > 0 ? ((await nativeBytes()) - native0) / sent : 0);
  const passed = await Promise.all(
    ['unbound', 'miss', 'other'].map(
      async (reason) =>
        `${reason} ${await sumMetric(fleet.nodes, 'weightcache_transport_native_passed_total', { reason })}`,
    ),
  );
  const served = await sumMetric(fleet.nodes, 'weightcache_transport_native_served_total');
  f.passed.push(`node READ_CHUNK so far: native ${served}, to JavaScript ${passed.join(', ')}`);
}

let nginxPid = 0;

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
    nginxPid = nginx.pids[0]!;
    const direct = '/demo/tiny-llama/';
    const viaCache = '/v1/objects/demo/tiny-llama/';
    const mib = Math.round(seeded.bytes / 2 ** 20);
    const c = `${CLIENTS} clients on ${SIDECARS} sidecars load a ${mib} MiB model`;
    const server = `weightcache (${NODES} nodes, ${SIDECARS} sidecars, http.door ${SIDECAR_DOOR}${NATIVE_READS ? '' : ', transport.nativeReads false'}${RECEIVE_IN_PLACE ? ', sidecar.receiveInPlace' : ''})`;
    const phases = {
      cold: newFigures(`${c}`),
      warm: newFigures(`${c}, nodes warm (new sidecars)`),
    };
    const base: number[] = [];
    const load: number[] = [];
    // The origin's files in the page cache, as they are for every run below.
    await readModel(bin, nginx.port, direct, seeded.dir, files);
    for (let run = 0; run < RUNS; run++) {
      load.push(loadavg()[0]!);
      const b = await readModel(bin, nginx.port, direct, seeded.dir, files);
      base.push(b.seconds);

      const dir = join(work, `run${run}`);
      const fleet = await startFleet(dir, root, NODES, SIDECARS, {
        origin: { type: 'http', http: { baseUrl: `http://127.0.0.1:${nginx.port}` } },
        nodeTransport: { nativeReads: NATIVE_READS },
        sidecar: {
          http: { listen: '127.0.0.1:0', door: SIDECAR_DOOR },
          cache: { dram: { maxBytes: '512MiB' }, nvme: null },
          sidecar: { receiveInPlace: RECEIVE_IN_PLACE },
        },
        execArgv: PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(dir, 'prof')] : [],
      });
      try {
        // Cold: every cache empty. Warm: the nodes hold the model, the sidecars are new hosts.
        for (const [name, f] of Object.entries(phases)) {
          if (name === 'warm') await fleet.replaceSidecars();
          await loadPhase(fleet, f, b.seconds, () => {
            const out = [] as Promise<ClientRun>[];
            for (let i = 0; i < CLIENTS; i++) {
              const port = Number(new URL(fleet.sidecars[i % SIDECARS]!.url).port);
              out.push(readModel(bin, port, viaCache, seeded.dir, files));
            }
            return out;
          });
          f.origin.push((await sumMetric(fleet.nodes, 'weightcache_origin_bytes_total')) / seeded.bytes);
          console.log(
            `run ${run} ${name}: fleet ${f.time.at(-1)!.toFixed(2)} s, one client from nginx ${b.seconds.toFixed(2)} s, ` +
              `origin ${f.origin.at(-1)!.toFixed(2)}x, load ${load.at(-1)!.toFixed(1)}; ${f.passed.at(-1)}`,
          );
        }
      } finally {
        await fleet.stop(PROFILE_DIR !== '');
      }
      if (PROFILE_DIR) keepProfiles(join(dir, 'prof'), PROFILE_DIR, run, fleet);
      rmSync(dir, { recursive: true, force: true });
    }
    const baseName = 'nginx (1 client, origin alone)';
    const note = `load average ${load.map((x) => x.toFixed(1)).join(', ')}`;
    const rows = [];
    for (const f of Object.values(phases)) {
      rows.push(
        row(f.c, server, 'fill time', 's', f.time, note),
        row(f.c, baseName, 'fill time', 's', base, 'one client reading the model from the origin alone'),
        row(f.c, server, 'fill time / one client from origin', 'x', f.ratio, 'target ≤ 1.5'),
        row(
          f.c,
          server,
          'origin bytes / model',
          'x',
          f.origin,
          "the nodes' origin bytes since the fleet started",
        ),
        row(
          f.c,
          baseName,
          'origin bytes / model',
          'x',
          base.map(() => 1),
        ),
        row(f.c, server, 'nodes CPU per GB delivered', 'core-s/GB', f.nodeCpu),
        row(f.c, server, 'sidecars CPU per GB delivered', 'core-s/GB', f.sidecarCpu),
        row(f.c, server, 'origin (nginx) CPU per GB delivered', 'core-s/GB', f.nginxCpu),
        row(f.c, server, 'clients CPU per GB delivered', 'core-s/GB', f.clientCpu),
        row(f.c, server, 'node payload bytes sent without JavaScript', 'share', f.nativeShare),
      );
    }
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
