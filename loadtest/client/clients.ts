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
}

export async function runRangeClient(bin: string, r: RangeRun): Promise<ClientResult> {
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
    `http://127.0.0.1:${r.port}${target.path}`,
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
