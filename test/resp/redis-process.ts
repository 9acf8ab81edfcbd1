/** A real redis-server on a free loopback port, for differential tests and benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../harness/ports.js';

export interface RedisProcess {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  await Promise.race([ready, failed]);
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
