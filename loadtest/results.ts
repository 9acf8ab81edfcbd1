/**
 * The result model every scenario produces, and the one place that turns
 * repeated runs into rows (median, min, max) and rows into ratios.
 *
 * Ratio = weightcache / best peer, per case and metric, where "best" is the
 * highest throughput or the lowest latency among the other servers of that
 * case. Rows whose metric has no direction (CPU, RSS) get no ratio.
 */
import { cpus, loadavg, totalmem } from 'node:os';

export interface Row {
  readonly scenario: string;
  readonly case: string;
  readonly server: string;
  readonly metric: string;
  readonly unit: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every run's value, in run order (length = number of runs). */
  readonly runs: readonly number[];
  /** weightcache / best peer for this case+metric (only on weightcache rows). */
  ratio?: number | null;
  /** The peer the ratio is against. */
  vs?: string;
  readonly note?: string;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly status: 'ok' | 'not available' | 'failed';
  readonly reason?: string;
  readonly command: string;
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly rows: Row[];
  readonly notes: string[];
}

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly node: string;
  readonly loadavg1mAtStart: number;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cores: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
    loadavg1mAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/** Direction of a metric: which value is better, or null when it is context, not a score. */
const DIRECTION: Readonly<Record<string, 'higher' | 'lower'>> = {
  'GB/s': 'higher',
  'req/s': 'higher',
  // Names used by the transport benchmark's rows (issue 3).
  throughput: 'higher',
  requests: 'higher',
  p50: 'lower',
  p99: 'lower',
  'fill time': 'lower',
  'origin bytes / model': 'lower',
  // The store's benchmarks (loadtest/store/).
  'byte hit ratio': 'higher',
  'chunk hit ratio': 'higher',
  'lookups/s': 'higher',
};

export function direction(metric: string): 'higher' | 'lower' | null {
  return DIRECTION[metric] ?? null;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Collects per-run samples keyed by case/server/metric, in first-seen order. */
export class Samples {
  private readonly map = new Map<
    string,
    { c: string; server: string; metric: string; unit: string; v: number[] }
  >();
  private readonly notes = new Map<string, string>();

  add(c: string, server: string, metric: string, unit: string, value: number): void {
    const k = `${c}\u0000${server}\u0000${metric}`;
    const e = this.map.get(k) ?? { c, server, metric, unit, v: [] };
    e.v.push(value);
    this.map.set(k, e);
  }

  note(c: string, server: string, metric: string, text: string): void {
    this.notes.set(`${c}\u0000${server}\u0000${metric}`, text);
  }

  rows(scenario: string): Row[] {
    const rows: Row[] = [];
    for (const [k, e] of this.map) {
      const note = this.notes.get(k);
      rows.push({
        scenario,
        case: e.c,
        server: e.server,
        metric: e.metric,
        unit: e.unit,
        median: round(median(e.v)),
        min: round(Math.min(...e.v)),
        max: round(Math.max(...e.v)),
        runs: e.v.map(round),
        ...(note ? { note } : {}),
      });
    }
    return withRatios(rows);
  }
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const mag = Math.abs(x) >= 100 ? 1 : Math.abs(x) >= 1 ? 1000 : 100_000;
  return Math.round(x * mag) / mag;
}

/** The system under test: every server label that starts with "weightcache". */
export function isWeightcache(server: string): boolean {
  return server.startsWith('weightcache');
}

export function withRatios(rows: Row[]): Row[] {
  for (const r of rows) {
    const dir = direction(r.metric);
    if (!dir || !isWeightcache(r.server)) continue;
    const peers = rows.filter(
      (p) =>
        p.case === r.case && p.metric === r.metric && !isWeightcache(p.server) && Number.isFinite(p.median),
    );
    if (peers.length === 0) continue;
    const best = peers.reduce((a, b) =>
      (dir === 'higher' ? b.median > a.median : b.median < a.median) ? b : a,
    );
    // Three decimals: a ratio is read as "0.62×", more digits would be noise here.
    r.ratio = best.median === 0 ? null : Math.round((r.median / best.median) * 1000) / 1000;
    r.vs = best.server;
  }
  return rows;
}
