/**
 * CPU time of a process tree from /proc/<pid>/stat (utime + stime of every
 * live descendant), read before and after a measurement.
 *
 * Client and server share the machine's cores here, so a throughput figure
 * without the CPU each side burned is not interpretable: wrk at 1.8 cores
 * leaves the server 0.2.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux ABI Node supports.

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly cpuS: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    return { pid, ppid, cpuS: (utime + stime) / TICKS_PER_S };
  } catch {
    return null;
  }
}

/** CPU seconds used so far by `root` and all its live descendants. */
export function treeCpuSeconds(root: number): number {
  const stats: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (st) stats.push(st);
  }
  const children = new Map<number, number[]>();
  for (const st of stats) {
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  let total = 0;
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    total += byPid.get(pid)?.cpuS ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}

/**
 * Measures the cores (CPU seconds per wall second) used by server trees
 * across `fn`. Client CPU comes from the client itself (getrusage of a child
 * that has exited is not in /proc any more), see `childCpuSeconds`.
 */
export async function withCpu<T>(
  serverPids: readonly number[],
  fn: () => Promise<T>,
): Promise<{ value: T; serverCores: number; machineCores: number; wallS: number }> {
  const before = serverPids.reduce((a, p) => a + treeCpuSeconds(p), 0);
  const machineBefore = machineBusySeconds();
  const t0 = performance.now();
  const value = await fn();
  const wallS = (performance.now() - t0) / 1000;
  const after = serverPids.reduce((a, p) => a + treeCpuSeconds(p), 0);
  const machine = machineBusySeconds() - machineBefore;
  return {
    value,
    serverCores: wallS > 0 ? (after - before) / wallS : 0,
    machineCores: wallS > 0 ? machine / wallS : 0,
    wallS,
  };
}

/** Reads the node's RSS in bytes (VmRSS) — memory the kernel cannot reclaim here (no swap). */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores; /proc/stat, idle and iowait excluded). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / TICKS_PER_S;
}

/** RSS of a process tree (nginx/varnish workers included), bytes. */
export function treeRssBytes(root: number): number {
  let total = 0;
  const queue = [root];
  const seen = new Set<number>();
  const all = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += rssBytes(pid) ?? 0;
    for (const n of all) if (readStat(Number(n))?.ppid === pid) queue.push(Number(n));
  }
  return total;
}

/** Bytes a process tree caused to be read from storage (/proc/<pid>/io read_bytes; page-cache hits excluded). */
export function treeDiskReadBytes(root: number): number {
  let total = 0;
  for (const pid of descendants(root)) {
    try {
      const m = /^read_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
      total += m ? Number(m[1]) : 0;
    } catch {
      // Exited between listing and reading.
    }
  }
  return total;
}

function descendants(root: number): number[] {
  const stats = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((n) => readStat(Number(n)))
    .filter((s): s is ProcStat => s !== null);
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    out.push(pid);
    for (const s of stats) if (s.ppid === pid) queue.push(s.pid);
  }
  return out;
}
