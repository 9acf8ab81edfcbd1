/**
 * Starts moto's S3 server (PyPI `moto[server]`, installed by `npm run test:deps`)
 * as a real S3-compatible endpoint for the S3 origin's tests, the way Azurite
 * serves the Azure origin's: 127.0.0.1, a port the kernel picks (moto prints
 * it), state in memory, the process group killed on stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { venvPython } from './python.js';

export interface MotoHandle {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

export async function startMoto(): Promise<MotoHandle> {
  const child: ChildProcess = spawn(venvPython('main'), ['-m', 'moto.server', '-H', '127.0.0.1', '-p', '0'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Credentials moto accepts (it checks none); region for STS answers.
    env: { ...process.env, AWS_DEFAULT_REGION: 'us-east-1', MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moto did not start:\n${out}`)), START_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moto exited with ${code}:\n${out}`));
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await exited;
      }
    },
  };
}
