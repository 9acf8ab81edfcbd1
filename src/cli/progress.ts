/**
 * Progress of a byte transfer, shown three ways: a cli-progress bar (bytes,
 * rate, ETA) on a terminal; plain periodic lines when stdout is a pipe or a
 * log file (a bar's carriage returns make a mess there); nothing with --quiet.
 * The rate counts only bytes moved in this run, so a resumed pull does not
 * claim the bytes it found on disk as speed.
 */
import { Presets, SingleBar } from 'cli-progress';
import { formatBytes } from '../config/units.js';

export type ProgressMode = 'bar' | 'lines' | 'quiet';

export interface Progress {
  /** Total bytes done so far (including those done before this run). */
  update(doneBytes: number, totalBytes?: number): void;
  stop(): void;
}

export function progressMode(quiet: boolean): ProgressMode {
  if (quiet) return 'quiet';
  return process.stdout.isTTY ? 'bar' : 'lines';
}

export function startProgress(o: {
  label: string;
  totalBytes: number;
  startBytes: number;
  mode: ProgressMode;
  /** Between plain lines. */
  intervalMs?: number;
}): Progress {
  const t0 = performance.now();
  const rate = (done: number) => (done - o.startBytes) / Math.max(0.001, (performance.now() - t0) / 1000);
  let total = o.totalBytes;
  if (o.mode === 'quiet') return { update: () => {}, stop: () => {} };
  if (o.mode === 'bar') {
    const bar = new SingleBar(
      {
        format: `${o.label} [{bar}] {percentage}% | {doneH} of {totalH} | {rateH}/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
        fps: 10,
      },
      Presets.shades_classic,
    );
    const payload = (done: number) => ({
      doneH: formatBytes(done),
      totalH: formatBytes(total),
      rateH: formatBytes(Math.round(rate(done))),
    });
    bar.start(Math.max(1, total), o.startBytes, payload(o.startBytes));
    // update() is called per socket read; the bar is redrawn at most 10 times a second.
    let latest = o.startBytes;
    const draw = () => bar.update(latest, payload(latest));
    const timer = setInterval(draw, 100);
    timer.unref();
    return {
      update(done, newTotal) {
        latest = done;
        if (newTotal !== undefined && newTotal !== total) {
          total = newTotal;
          bar.setTotal(Math.max(1, total));
        }
      },
      stop: () => {
        clearInterval(timer);
        draw();
        bar.stop();
      },
    };
  }
  let last = o.startBytes;
  const line = () => {
    const r = rate(last);
    const eta = r > 0 ? `, ETA ${Math.ceil((total - last) / r)}s` : '';
    const pct = total > 0 ? Math.floor((100 * last) / total) : 100;
    process.stdout.write(
      `${o.label}: ${formatBytes(last)} of ${formatBytes(total)} (${pct}%), ${formatBytes(Math.round(r))}/s${eta}\n`,
    );
  };
  const timer = setInterval(line, o.intervalMs ?? 2000);
  timer.unref();
  return {
    update(done, newTotal) {
      last = done;
      if (newTotal !== undefined) total = newTotal;
    },
    stop: () => clearInterval(timer),
  };
}
