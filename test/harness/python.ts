/**
 * Runs the real Python clients (huggingface_hub, boto3, s3fs, azure-storage-blob,
 * adlfs, the Run:ai streamer) that `npm run test:deps` installs into venvs
 * outside the repository (scripts/install-test-deps.sh). A script prints one
 * JSON document on stdout; anything on stderr is kept for the failure message.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type VenvSet = 'main' | 's3fs';

const VENVS = process.env.WEIGHTCACHE_TEST_VENVS ?? '/var/cache/weightcache';

export function venvPython(set: VenvSet): string {
  return join(VENVS, `venv-${set}`, 'bin', 'python');
}

/** Whether the venv exists; tests skip without it only outside CI (CI must have run test:deps). */
export function hasVenv(set: VenvSet): boolean {
  return existsSync(venvPython(set));
}

export interface PythonResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runPython(
  set: VenvSet,
  script: string,
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<PythonResult> {
  const child = spawn(venvPython(set), [script, ...args], {
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Runs a script that must succeed and print JSON; returns the parsed document. */
export async function runPythonJson<T = Record<string, unknown>>(
  set: VenvSet,
  script: string,
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<T> {
  const r = await runPython(set, script, args, opts);
  if (r.code !== 0) {
    throw new Error(`${script} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${script} printed no JSON\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

/** What a client script printed: JSON the test checks field by field. */
// biome-ignore lint/suspicious/noExplicitAny: untyped JSON from a Python script, asserted by each test
export type ClientOutput = Record<string, any>;
