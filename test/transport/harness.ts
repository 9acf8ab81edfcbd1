/** Starts test peers as real child processes and always cleans them up. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface PeerProcess {
  port: number;
  proc: ChildProcess;
  /** Every stdout line so far (pino JSON lines). */
  lines: string[];
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startPeer(fixture: string, env: Record<string, string> = {}): Promise<PeerProcess> {
  const file = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, WEIGHTCACHE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  exited.then(() => live.delete(proc));
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve(l: string): void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const waitForLine = (re: RegExp, timeoutMs = 15_000) =>
    new Promise<string>((resolve, reject) => {
      const hit = lines.find((l) => re.test(l));
      if (hit) return resolve(hit);
      const t = setTimeout(
        () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  // Generous: a loaded machine or a sanitizer build starts slowly; a healthy start takes ~1 s.
  const first = await waitForLine(/"listening"/, 60_000);
  const port = (JSON.parse(first) as { listening: number }).listening;
  return {
    port,
    proc,
    lines,
    waitForLine,
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}
