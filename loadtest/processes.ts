/**
 * Every process the load test starts goes through here, so that all of them
 * are stopped by PID on success, failure, Ctrl-C or SIGTERM: a benchmark that
 * leaves an nginx on a port poisons the next run's figures.
 *
 * Long-lived servers are spawned detached (own process group) and stopped by
 * signalling that group: nginx and varnishd fork workers, and a worker that
 * outlives its master would keep the port and the memory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<number | null>;
  /** Last output lines, kept for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

const live = new Set<Started>();

export interface StartOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** File that receives stdout+stderr (default: kept in memory only). */
  readonly logFile?: string;
  /** Signal for a graceful stop (default SIGTERM); SIGKILL follows after `killAfterMs`. */
  readonly stopSignal?: NodeJS.Signals;
  readonly killAfterMs?: number;
}

export function start(name: string, cmd: string, args: readonly string[], opts: StartOptions = {}): Started {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${cmd}`);
  const pid = child.pid;
  const lines: string[] = [];
  const log = opts.logFile ? createWriteStream(opts.logFile) : null;
  const keep = (chunk: Buffer) => {
    log?.write(chunk);
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(l);
    // Bounded: a chatty server must not grow the runner's memory.
    if (lines.length > 200) lines.splice(0, lines.length - 50);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  const handle: Started = {
    name,
    pid,
    child,
    exited,
    tail: () => lines.slice(-15).join('\n'),
    async stop() {
      live.delete(handle);
      if (child.exitCode !== null || child.signalCode !== null) return;
      signalGroup(pid, opts.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), opts.killAfterMs ?? 5000);
      await exited;
      clearTimeout(timer);
      // Workers of the group (nginx, varnishd children) may outlive the leader by a moment.
      signalGroup(pid, 'SIGKILL');
      log?.end();
    },
  };
  live.add(handle);
  return handle;
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/** Runs a command to completion, capturing stdout; rejects on non-zero exit or timeout. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; pid: number }> {
  const p = start(cmd, cmd, args, { cwd: opts.cwd, env: opts.env, stopSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  p.child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString('utf8');
  });
  p.child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
  });
  const timer = setTimeout(() => void p.stop(), opts.timeoutMs ?? 120_000);
  const code = await p.exited;
  clearTimeout(timer);
  live.delete(p);
  // Let the stdio streams drain after exit.
  if (p.child.stdout && !p.child.stdout.readableEnded) await once(p.child.stdout, 'close').catch(() => {});
  if (code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${(stderr || stdout).trim().slice(-800)}`);
  }
  return { stdout, stderr, pid: p.pid };
}

/** Stops everything still running, newest first (clients before the servers they talk to). */
export async function stopAll(): Promise<void> {
  const all = [...live].reverse();
  for (const p of all) await p.stop();
}

let installed = false;

/** Ctrl-C, SIGTERM or a crash still stops every started process. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nloadtest: ${sig}, stopping ${live.size} process(es)\n`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    // Last resort, synchronous: kill whatever is left.
    for (const p of live) signalGroup(p.pid, 'SIGKILL');
  });
}
