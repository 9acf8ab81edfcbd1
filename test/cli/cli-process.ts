/**
 * Runs the real `weightcache` CLI as a child process for tests, collecting
 * stdout and stderr, with a handle to signal it mid-run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { BIN } from '../harness/node-process.js';
import { until } from '../harness/until.js';

export interface CliRun {
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Exit code, or 128 + signal number when killed by a signal. */
  readonly exited: Promise<number>;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** `env` adds variables to the test's environment, whose WEIGHTCACHE_* ones are left out. */
export function spawnCli(args: string[], extraEnv: Record<string, string> = {}): CliRun {
  const env: Record<string, string> = { ...extraEnv };
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('WEIGHTCACHE_')) env[k] ??= v;
  const proc = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number>((resolve) =>
    proc.once('close', (code, signal) => resolve(code ?? 128 + (SIGNALS[signal ?? ''] ?? 0))),
  );
  return { proc, stdout: () => out, stderr: () => err, exited };
}

export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = spawnCli(args, env);
  const code = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Polls until `cond` holds while `run` is alive; a run that exits first fails with its output. */
export async function whileRunning(run: CliRun, cond: () => boolean | Promise<boolean>): Promise<void> {
  await until(async () => {
    if (run.proc.exitCode !== null || run.proc.signalCode !== null) {
      throw new Error(`the CLI exited (${run.proc.exitCode}) before the condition held:\n${run.stderr()}`);
    }
    return cond();
  });
}
