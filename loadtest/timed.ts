/**
 * Runs a client command and measures the CPU it used: bash's `times` prints
 * the children's user+sys after they exit, which /proc can no longer tell.
 */
import { run } from './processes.js';

export interface Timed {
  readonly stdout: string;
  /** Cores used: children's CPU seconds / wall seconds. */
  readonly cores: number;
  readonly wallS: number;
  readonly exitError: string | null;
}

export async function runTimed(cmd: string, args: readonly string[], timeoutMs: number): Promise<Timed> {
  // `times` prints two lines: the shell's own, then its children's "XmY.YYYs XmY.YYYs".
  const script = '"$@"; rc=$?; echo __CPU__; times; exit $rc';
  const t0 = performance.now();
  let stdout: string;
  let exitError: string | null = null;
  try {
    ({ stdout } = await run('bash', ['-c', script, 'bash', cmd, ...args], { timeoutMs }));
  } catch (err) {
    exitError = (err as Error).message;
    const m = /exited [-\d]+: ([\s\S]*)$/.exec(exitError);
    stdout = m?.[1] ?? '';
  }
  const wallS = (performance.now() - t0) / 1000;
  const [out, times = ''] = stdout.split('__CPU__');
  const secs = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const cpu = (secs[2] ?? 0) + (secs[3] ?? 0);
  return { stdout: out ?? '', cores: wallS > 0 ? cpu / wallS : 0, wallS, exitError };
}
