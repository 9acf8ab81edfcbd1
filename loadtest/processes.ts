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
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<number | null>;
  /** Last output lines, kept for error messages. */
  tail(): string;
  stop(): Promise<void>;
  /** SIGKILL to the whole group (a crash, not a shutdown); resolves once it is gone. */
  kill(): Promise<void>;
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
  // After Ctrl-C the scenario code may still be unwinding: it must not start anything new.
  if (interrupted) throw new Error(`interrupted: not starting ${name}`);
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
  let stopping: Promise<void> | undefined;
  const handle: Started = {
    name,
    pid,
    child,
    exited,
    tail: () => lines.slice(-15).join('\n'),
    stop() {
      // Idempotent, and visible to stopAll() while in progress: the Ctrl-C handler and a
      // scenario's `finally` may both stop the same process, and both must wait for the exit.
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          signalGroup(pid, opts.stopSignal ?? 'SIGTERM');
          const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), opts.killAfterMs ?? 5000);
          await exited;
          clearTimeout(timer);
        }
        // Workers of the group (nginx, varnishd children) may outlive the leader by a moment.
        signalGroup(pid, 'SIGKILL');
        log?.end();
        live.delete(handle);
        recordGroups();
      })();
      return stopping;
    },
    async kill() {
      signalGroup(pid, 'SIGKILL');
      await handle.stop();
    },
  };
  live.add(handle);
  recordGroups();
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

/** Removes a directory tree; never throws (a leftover temp dir must not turn a run into a crash). */
export function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (err) {
    process.stderr.write(`loadtest: could not remove ${dir}: ${(err as Error).message}\n`);
  }
}

const tempDirs = new Set<string>();

/** A directory removed if the run is interrupted (the runner removes it itself otherwise). */
export function removeOnInterrupt(dir: string): void {
  tempDirs.add(dir);
}

let installed = false;
let groupsFile: string | null = null;

/** Keeps the watchdog's list of process groups current (see installCleanup). */
function recordGroups(): void {
  if (groupsFile) writeFileSync(groupsFile, [...live].map((p) => `${p.pid}\n`).join(''));
}
let interrupted = false;

/** True once Ctrl-C/SIGTERM arrived: results of a cut-short run must not overwrite good ones. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/**
 * Ctrl-C, SIGTERM or a crash still stops every started process. `stateDir` is
 * the run's temp dir: a watchdog shell (its own process group) polls the
 * runner's PID and, once the runner is gone without cleaning up — SIGKILL, or
 * a second Ctrl-C that tsx turns into a kill — kills the process groups listed
 * in `{stateDir}/pgids` and removes the dir.
 */
export function installCleanup(stateDir: string): void {
  if (installed) return;
  installed = true;
  mkdirSync(stateDir, { recursive: true });
  groupsFile = join(stateDir, 'pgids');
  recordGroups();
  const watchdog =
    'while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; ' +
    'for g in $(cat "$2/pgids" 2>/dev/null); do kill -KILL "-$g" 2>/dev/null; done; rm -rf "$2"';
  spawn('sh', ['-c', watchdog, 'loadtest-watchdog', String(process.pid), stateDir], {
    detached: true,
    stdio: 'ignore',
  }).unref();
  const onSignal = (sig: NodeJS.Signals) => {
    // A terminal's Ctrl-C reaches npm, tsx and us; tsx relays it again. Handle it once and
    // keep the handler, or the second signal would kill us before the servers are stopped.
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nloadtest: ${sig}, stopping ${live.size} process(es)\n`);
    void stopAll().finally(() => {
      // Per-run dirs hold chunk files (GiBs): do not leave them behind.
      for (const d of tempDirs) removeDir(d);
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', () => {
    // Last resort, synchronous: kill whatever is left.
    for (const p of live) signalGroup(p.pid, 'SIGKILL');
  });
}
