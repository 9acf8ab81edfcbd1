/**
 * Runs a real `weightcache node` process for tests: writes its YAML config
 * into a temp dir, starts `bin/weightcache.js node`, waits for /readyz, and
 * offers metrics scraping and stop/kill. Ports are picked by the node itself
 * (listen on port 0) and read back from its "ready" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const BIN = resolve(import.meta.dirname, '../../bin/weightcache.js');

/** Every process started here; killed when the test process exits, whatever the tests did. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface NodeProcess {
  readonly url: string;
  readonly dir: string;
  readonly configFile: string;
  readonly proc: ChildProcess;
  readonly logs: string[];
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** SIGTERM and wait for exit (graceful drain). */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Config tree merged over test defaults (ports 0, temp dirs, small tiers). */
  readonly config?: Record<string, unknown>;
  /** Reuse a directory (warm restarts). */
  readonly dir?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  /** 'node' (default) or 'sidecar'. */
  readonly role?: 'node' | 'sidecar';
}

/** The HTTP door startNodeProcess's nodes run unless a test names one (WEIGHTCACHE_TEST_HTTP_DOOR, else the default, native). */
export const TEST_HTTP_DOOR: 'js' | 'native' =
  process.env.WEIGHTCACHE_TEST_HTTP_DOOR === 'js' ? 'js' : 'native';

function doorFromEnv(): Record<string, unknown> {
  const door = process.env.WEIGHTCACHE_TEST_HTTP_DOOR;
  return door ? { door, threads: 2 } : {};
}

export async function startNodeProcess(opts: StartOptions = {}): Promise<NodeProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'wc-node-'));
  const base = {
    // Tests read counters right after acting: no cached /metrics page, and
    // /metrics open (metric() sends no token) even where a test turns auth on.
    // WEIGHTCACHE_TEST_HTTP_DOOR=native runs a suite against the native door (docs/http-api.md, "The native door").
    http: { listen: '127.0.0.1:0', metricsCache: 0, ...doorFromEnv() },
    auth: { openMetrics: true },
    origin: { type: 'fs', fs: { root: join(dir, 'origin') } },
    cache: {
      chunkSize: '1MiB',
      dram: { maxBytes: '64MiB' },
      nvme: { dir: join(dir, 'chunks'), maxBytes: '1GiB' },
    },
    log: { level: 'info' },
  };
  const config = mergeConfig(base, opts.config ?? {});
  const configFile = join(dir, 'node.yaml');
  writeFileSync(configFile, stringify(config));
  const proc = spawn(process.execPath, [BIN, opts.role ?? 'node', '--config', configFile], {
    env: { ...cleanEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const logs: string[] = [];
  let port: number | undefined;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let buf = '';
  proc.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      logs.push(line);
      if (port === undefined && /weightcache \w+ ready/.test(line)) {
        port = Number(/"http":"[^"]*:(\d+)"/.exec(line)?.[1]);
      }
    }
  });
  proc.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (port === undefined) {
    if (proc.exitCode !== null) throw new Error(`node exited with ${proc.exitCode}:\n${logs.join('\n')}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`node did not become ready:\n${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    dir,
    configFile,
    proc,
    logs,
    metric: async (name, labels) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return sumMetric(text, name, labels);
    },
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Parses Prometheus text and sums the samples of `name` matching `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) got[k!] = v!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('WEIGHTCACHE_')) env[k] = v;
  return env;
}

/** `b` over `a`, mappings merged key by key (lists and scalars replaced). */
export function mergeConfig(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev)
        ? mergeConfig(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/**
 * One node per HTTP door with otherwise the same config, for tests that hold the native door's
 * answers to the JavaScript door's: `config(door)` gives each its config.
 */
export async function startBothDoors(
  config: (door: 'js' | 'native') => Record<string, unknown>,
): Promise<[js: NodeProcess, native: NodeProcess]> {
  return Promise.all([
    startNodeProcess({ config: config('js'), timeoutMs: 120_000 }),
    startNodeProcess({ config: config('native'), timeoutMs: 120_000 }),
  ]);
}
