/**
 * Varnish with malloc storage in front of an origin (here: the nginx peer):
 * the peer a user would pick as an off-the-shelf memory cache. Warm it with
 * one full GET per object before measuring, so every range is a hit.
 */
import { join } from 'node:path';
import { freePort, waitForPort } from '../ports.js';
import { start } from '../processes.js';
import type { Server } from './server.js';

export interface VarnishOptions {
  readonly backendPort: number;
  readonly workDir: string;
  readonly mallocBytes: number;
}

export async function startVarnish(opts: VarnishOptions): Promise<Server> {
  const port = await freePort();
  const args = [
    '-F', // foreground: the PID we hold is the manager, stopped by signal
    '-j',
    'none', // root, no jail: it reads nothing but its own temp dir
    '-n',
    join(opts.workDir, 'varnish'),
    '-a',
    `127.0.0.1:${port}`,
    '-b',
    `127.0.0.1:${opts.backendPort}`,
    '-s',
    `malloc,${Math.ceil(opts.mallocBytes / 2 ** 20)}m`,
    '-T',
    'none',
    // Objects must outlive the whole run (default TTL is 120 s).
    '-p',
    'default_ttl=86400',
    '-p',
    'default_grace=0',
  ];
  const p = start('varnishd', 'varnishd', args, { killAfterMs: 10_000 });
  await waitForPort(port, 'varnishd', p.exited).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.tail()}`);
  });
  return { name: 'varnish (malloc)', port, pids: [p.pid], pathPrefix: '', stop: () => p.stop() };
}
