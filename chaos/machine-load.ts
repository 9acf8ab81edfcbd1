/**
 * How much of the machine other work took while a scenario ran. This 2-core
 * machine is shared (colleagues' builds and tests), and a p99 measured while
 * someone else used a core is not the p99 of a quiet machine: every result
 * carries the cores used by processes outside this run, sampled once a second
 * (machine busy time from /proc/stat minus the CPU of the runner's own process
 * tree). A process of ours that exits between two samples loses its last
 * slice to "other", so the figure errs high, never low.
 */
import { loadavg } from 'node:os';
import { machineBusySeconds, treeCpuSeconds } from '../loadtest/cpu.js';
import { median } from '../loadtest/results.js';

export interface MachineLoad {
  readonly loadavg1mStart: number;
  readonly loadavg1mEnd: number;
  /** Cores used by processes outside this run: median and max of the 1 s samples. */
  readonly otherCoresMedian: number;
  readonly otherCoresMax: number;
  /** Cores this run's processes used (runner, nodes, clients), median. */
  readonly ownCoresMedian: number;
}

export function meterMachineLoad(): { stop(): MachineLoad } {
  const start = loadavg()[0] ?? 0;
  const other: number[] = [];
  const own: number[] = [];
  let last = { t: performance.now(), busy: machineBusySeconds(), ours: treeCpuSeconds(process.pid) };
  const timer = setInterval(() => {
    const now = { t: performance.now(), busy: machineBusySeconds(), ours: treeCpuSeconds(process.pid) };
    const wall = (now.t - last.t) / 1000;
    if (wall > 0.5) {
      const ours = Math.max(0, now.ours - last.ours) / wall;
      own.push(ours);
      other.push(Math.max(0, (now.busy - last.busy) / wall - ours));
    }
    last = now;
  }, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const r2 = (x: number) => Math.round(x * 100) / 100;
      return {
        loadavg1mStart: r2(start),
        loadavg1mEnd: r2(loadavg()[0] ?? 0),
        otherCoresMedian: other.length ? r2(median(other)) : 0,
        otherCoresMax: other.length ? r2(Math.max(...other)) : 0,
        ownCoresMedian: own.length ? r2(median(own)) : 0,
      };
    },
  };
}
