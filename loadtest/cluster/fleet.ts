/**
 * A small fleet for the cluster benchmarks: N node processes on distinct
 * loopback addresses (127.0.0.x) talking over the native transport, M
 * sidecars in front of them, one fs origin holding the demo checkpoint.
 * Everything is started from bin/weightcache.js (the real program) and
 * stopped by PID, also when the benchmark fails.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/weightcache.js');

export interface Proc {
  readonly url: string;
  readonly proc: ChildProcess;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** dist/ must match the sources; the build takes about a second. */
export function ensureBuilt(): void {
  const r = spawnSync(
    process.execPath,
    [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: REPO,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0 && !existsSync(join(REPO, 'dist/src/cli/main.js')))
    throw new Error(`build failed:\n${r.stdout}`);
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startProc(
  role: 'node' | 'sidecar',
  dir: string,
  config: object,
  execArgv: readonly string[] = [],
): Promise<Proc> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${role}.yaml`);
  writeFileSync(file, stringify(config));
  const proc = spawn(process.execPath, [...execArgv, BIN, role, '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: cleanEnv(),
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let port: number | undefined;
  let logs = '';
  proc.stderr!.on('data', (d: Buffer) => {
    logs += d.toString();
    if (logs.length > 100_000) logs = logs.slice(-50_000);
    const ready = logs.split('\n').find((l) => /weightcache \w+ ready/.test(l));
    if (ready) port ??= Number(/"http":"[^"]*:(\d+)"/.exec(ready)?.[1]);
  });
  for (let i = 0; i < 400 && port === undefined; i++) {
    if (proc.exitCode !== null) throw new Error(`${role} exited: ${logs.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  if (port === undefined) throw new Error(`${role} did not start: ${logs.slice(-2000)}`);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    proc,
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        const got = Object.fromEntries(
          [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
        );
        if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[3]);
      }
      return sum;
    },
  };
}

export interface Fleet {
  readonly nodes: Proc[];
  readonly sidecars: Proc[];
  /** New sidecars with empty caches in place of the old (killed): hosts joining a fleet whose nodes are warm. */
  replaceSidecars(): Promise<void>;
  /** Kills every process (SIGKILL), or with `graceful` stops them with SIGTERM first. */
  stop(graceful?: boolean): Promise<void>;
}

/** What a fleet's members differ in from the defaults below (the fleet scenario's HTTP origin, native doors). */
export interface FleetOptions {
  /** The `origin` section; default: the fs origin over `originRoot`. */
  readonly origin?: object;
  /** Merged into every node's config (after the defaults). */
  readonly node?: Record<string, unknown>;
  /** Merged into every node's `transport` section (e.g. { nativeReads: false }). */
  readonly nodeTransport?: Record<string, unknown>;
  /** Merged into every sidecar's config (after the defaults). */
  readonly sidecar?: Record<string, unknown>;
  /** Node flags for every process, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  readonly execArgv?: readonly string[];
}

/** Starts `nodes` members and `sidecars` sidecars over `originRoot`, all with cold caches under `dir`. */
export async function startFleet(
  dir: string,
  originRoot: string,
  nodes: number,
  sidecars: number,
  opts: FleetOptions = {},
): Promise<Fleet> {
  const port = await freePort();
  const members = Array.from({ length: nodes }, (_, i) => `127.0.0.${51 + i}:${port}`);
  const common = {
    origin: opts.origin ?? { type: 'fs', fs: { root: originRoot } },
    log: { level: 'info' }, // the 'ready' line (info) carries the HTTP port
    http: { listen: '127.0.0.1:0' },
  };
  const ns = await Promise.all(
    members.map((self, i) =>
      startProc(
        'node',
        join(dir, `node${i}`),
        {
          ...common,
          transport: { listen: self, ...opts.nodeTransport },
          cluster: { self, members: { static: members } },
          cache: {
            dram: { maxBytes: '512MiB' },
            nvme: { dir: join(dir, `node${i}`, 'chunks'), maxBytes: '2GiB' },
          },
          ...opts.node,
        },
        opts.execArgv,
      ),
    ),
  );
  let generation = 0;
  const startSidecars = () =>
    Promise.all(
      Array.from({ length: sidecars }, (_, i) =>
        startProc(
          'sidecar',
          join(dir, `sidecar${i}${generation ? `-${generation}` : ''}`),
          {
            ...common,
            cluster: { members: { static: members } },
            // A GPU host pulls into /dev/shm or local NVMe: the sidecar's own tier stays small here.
            cache: { dram: { maxBytes: '64MiB' }, nvme: null },
            ...opts.sidecar,
          },
          opts.execArgv,
        ),
      ),
    );
  const ss = await startSidecars();
  return {
    nodes: ns,
    sidecars: ss,
    replaceSidecars: async () => {
      for (const p of ss) {
        const gone = new Promise((r) => p.proc.once('exit', r));
        p.proc.kill('SIGKILL');
        await gone;
      }
      generation++;
      ss.splice(0, ss.length, ...(await startSidecars()));
    },
    stop: async (graceful = false) => {
      // A process killed by a signal has exitCode null and a signalCode: it is gone all the same.
      const running = [...ns, ...ss]
        .map((p) => p.proc)
        .filter((p) => p.exitCode === null && p.signalCode === null);
      await Promise.all(
        running.map((p) => {
          const gone = new Promise((r) => p.once('exit', r));
          // Graceful: SIGTERM lets node write what --cpu-prof gathered; SIGKILL after 15 s regardless.
          if (graceful) {
            p.kill('SIGTERM');
            setTimeout(() => p.kill('SIGKILL'), 15_000).unref();
          } else p.kill('SIGKILL');
          return gone;
        }),
      );
    },
  };
}

/** Sums a metric over the processes still alive (a killed node's counters died with it). */
export async function sumMetric(ps: Proc[], name: string, labels?: Record<string, string>): Promise<number> {
  const vals = await Promise.all(ps.map((p) => p.metric(name, labels).catch(() => 0)));
  return vals.reduce((a, b) => a + b, 0);
}

/** Runs a command to completion; resolves with its exit code. */
export function runCommand(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolveCode, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv() });
    live.add(p);
    p.once('error', reject);
    p.once('exit', (code) => {
      live.delete(p);
      resolveCode(code ?? 1);
    });
  });
}

/**
 * WEIGHTCACHE_* variables are config overrides to a weightcache process, and an
 * unknown one is refused at start: the runner's WEIGHTCACHE_LOADTEST_* must not reach it.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEIGHTCACHE_')));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function row(c: string, server: string, metric: string, unit: string, runs: number[], note?: string) {
  return {
    case: c,
    server,
    metric,
    unit,
    median: round(median(runs)),
    min: round(Math.min(...runs)),
    max: round(Math.max(...runs)),
    runs: runs.map(round),
    ...(note ? { note } : {}),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export { BIN };
