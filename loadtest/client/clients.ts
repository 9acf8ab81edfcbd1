/**
 * The two HTTP range clients every server is measured with: the C client
 * (rangeclient.c, built here with gcc) and wrk with wrk-ranges.lua.
 * Both print one JSON object; client CPU is measured the same way for both
 * (timed.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start } from '../processes.js';
import { runTimed } from '../timed.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(HERE, 'rangeclient.c');
const LUA = join(HERE, 'wrk-ranges.lua');

export interface ClientResult {
  readonly requests: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Cores used by the client over the measurement (CPU s / wall s). */
  readonly clientCores: number;
  readonly error: string;
}

/** Builds rangeclient into `outDir` unless an up-to-date binary is there. */
export function buildRangeClient(outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const bin = join(outDir, 'rangeclient');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(SOURCE).mtimeMs) return bin;
  const r = spawnSync('gcc', ['-O2', '-Wall', '-pthread', '-o', bin, SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc rangeclient.c failed: ${r.stderr}`);
  return bin;
}

interface RawClientJson {
  requests: number;
  bytes: number;
  seconds: number;
  errors: number;
  p50_ms: number;
  p99_ms: number;
  error?: string;
  complete?: boolean;
  // --keep-going / --verify / --mark-window (the reliability suite's runs)
  max_ms?: number;
  cpu_s?: number;
  failed?: number;
  wrong_bytes?: number;
  wrong_reads?: number;
  marked?: number;
  p99_mark_ms?: number;
  failures?: Record<string, number>;
}

function parseJson(out: string, what: string): RawClientJson {
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error(`${what}: no JSON result in output: ${out.slice(-500)}`);
  return JSON.parse(line) as RawClientJson;
}

export interface RangeRun {
  readonly port: number;
  /** URL paths with their sizes; ranges are drawn uniformly over them. */
  readonly targets: readonly { path: string; size: number }[];
  readonly rangeBytes: number;
  readonly conns: number;
  readonly durationS: number;
  readonly warmupS: number;
  /** Discard bodies in the kernel (recv MSG_TRUNC): the server-side bound. */
  readonly trunc?: boolean;
  /** Read every range of every target once, then stop. */
  readonly once?: boolean;
  /** The server answers HTTPS (only wrk speaks it; the C client is plain HTTP). */
  readonly tls?: boolean;
}

export async function runRangeClient(bin: string, r: RangeRun): Promise<ClientResult> {
  if (r.tls) throw new Error('the C client speaks plain HTTP only: measure a TLS server with wrk');
  const args = ['--port', String(r.port), '--range', String(r.rangeBytes), '--conns', String(r.conns)];
  for (const t of r.targets) args.push('--target', `${t.path}:${t.size}`);
  if (r.trunc) args.push('--trunc');
  if (r.once) args.push('--once');
  else args.push('--duration', String(r.durationS), '--warmup', String(r.warmupS));
  const run = await runTimed(bin, args, (r.durationS + r.warmupS) * 1000 + 300_000);
  if (!run.stdout.includes('{')) throw new Error(run.exitError ?? 'rangeclient printed nothing');
  const j = parseJson(run.stdout, 'rangeclient');
  const error = j.error || (j.complete === false ? 'not every range was read' : '');
  return toResult(j, run.cores, error);
}

export async function runWrk(r: RangeRun): Promise<ClientResult> {
  const target = r.targets[0];
  if (!target) throw new Error('wrk: no target');
  // Two threads: one per core; more only adds contention with the server.
  const args = [
    '-t2',
    `-c${r.conns}`,
    `-d${r.durationS}s`,
    '--timeout',
    '10s',
    '-s',
    LUA,
    `${r.tls ? 'https' : 'http'}://127.0.0.1:${r.port}${target.path}`,
    '--',
    String(target.size),
    String(r.rangeBytes),
  ];
  const t = await runTimed('wrk', args, r.durationS * 1000 + 60_000);
  if (!t.stdout.includes('{')) throw new Error(t.exitError ?? 'wrk printed nothing');
  const j = parseJson(t.stdout, 'wrk');
  return toResult(j, t.cores, j.errors > 0 ? `${j.errors} socket/status errors` : '');
}

function toResult(j: RawClientJson, clientCores: number, error: string): ClientResult {
  return {
    requests: j.requests,
    bytes: j.bytes,
    seconds: j.seconds,
    errors: j.errors,
    p50Ms: j.p50_ms,
    p99Ms: j.p99_ms,
    clientCores,
    error,
  };
}

/**
 * A run that checks every byte and counts every failure instead of stopping
 * at the first (the reliability suite, chaos/): `requests` random ranges of
 * random lengths, bodies compared with the origin's files, no retries.
 */
export interface CheckedRun {
  readonly port: number;
  readonly host?: string;
  readonly targets: readonly { path: string; size: number }[];
  /** Random lengths in [min, max] at random offsets; without a min, aligned ranges of max. */
  readonly rangeMinBytes?: number;
  readonly rangeMaxBytes: number;
  readonly conns: number;
  /** Stop after this many requests, or after `durationS`. */
  readonly requests?: number;
  readonly durationS?: number;
  /** Target paths start with `prefix`; the origin's copy of `prefix + rest` is `dir/rest`. */
  readonly verify: { readonly prefix: string; readonly dir: string };
  readonly timeoutS: number;
  /** Latencies of requests started within this many seconds after a mark() are also kept apart. */
  readonly markWindowS?: number;
  readonly seed?: number;
}

export interface CheckedResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Requests that got no 206 with a whole body (status, reset, cut, timeout); not retried. */
  readonly failed: number;
  /** Failures by kind: "status 502 ORIGIN_UNAVAILABLE", "body cut at", "connect", … */
  readonly failures: Readonly<Record<string, number>>;
  readonly wrongBytes: number;
  readonly wrongReads: number;
  readonly marked: number;
  /** p99 of the requests started within the mark window (null: none). */
  readonly p99MarkMs: number | null;
  readonly cpuS: number;
}

export function startCheckedClient(
  bin: string,
  r: CheckedRun,
): { readonly pid: number; mark(): void; readonly done: Promise<CheckedResult> } {
  const args = [
    '--port',
    String(r.port),
    '--host',
    r.host ?? '127.0.0.1',
    '--conns',
    String(r.conns),
    ...(r.requests !== undefined
      ? ['--requests', String(r.requests)]
      : ['--duration', String(r.durationS ?? 10), '--warmup', '0']),
    ...(r.rangeMinBytes !== undefined ? ['--range-min', String(r.rangeMinBytes)] : []),
    '--range',
    String(r.rangeMaxBytes),
    '--verify',
    `${r.verify.prefix}=${r.verify.dir}`,
    '--keep-going',
    '--timeout',
    String(r.timeoutS),
    '--seed',
    String(r.seed ?? 1),
  ];
  if (r.markWindowS) args.push('--mark-window', String(r.markWindowS));
  for (const t of r.targets) args.push('--target', `${t.path}:${t.size}`);
  const p = start('rangeclient', bin, args, { stopSignal: 'SIGKILL' });
  let out = '';
  p.child.stdout?.on('data', (b: Buffer) => {
    out += b.toString('utf8');
  });
  const done = p.exited.then(async (code) => {
    await p.stop();
    if (code !== 0 || !out.includes('{')) throw new Error(`rangeclient exited ${code}: ${p.tail()}`);
    const j = parseJson(out, 'rangeclient');
    return {
      requests: j.requests,
      seconds: j.seconds,
      p50Ms: j.p50_ms,
      p99Ms: j.p99_ms,
      maxMs: j.max_ms ?? Number.NaN,
      failed: j.failed ?? 0,
      failures: j.failures ?? {},
      wrongBytes: j.wrong_bytes ?? 0,
      wrongReads: j.wrong_reads ?? 0,
      marked: j.marked ?? 0,
      p99MarkMs: j.p99_mark_ms !== undefined && j.p99_mark_ms >= 0 ? j.p99_mark_ms : null,
      cpuS: j.cpu_s ?? Number.NaN,
    };
  });
  return {
    pid: p.pid,
    mark: () => {
      if (p.child.exitCode === null) p.child.kill('SIGUSR1');
    },
    done,
  };
}
