/**
 * redis-server holding the same bytes as the other servers, for RESP
 * scenarios (GETRANGE vs weightcache's RESP endpoint). Its own config in a
 * temp dir, no persistence, a high loopback port, stopped by PID.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, waitForPort } from '../ports.js';
import { start } from '../processes.js';
import type { Server } from './server.js';

export interface RedisServer extends Server {
  /** SET key to the file's bytes (one bulk string; redis' limit is 512 MB). */
  load(key: string, file: string): Promise<void>;
}

export async function startRedis(workDir: string): Promise<RedisServer> {
  const port = await freePort();
  const conf = join(workDir, 'redis.conf');
  // No RDB/AOF: a benchmark must not spend its cores on persistence.
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode yes',
      'daemonize no',
      `dir ${workDir}`,
      'save ""',
      'appendonly no',
      'proto-max-bulk-len 512mb',
      'client-output-buffer-limit normal 0 0 0',
      '',
    ].join('\n'),
  );
  const p = start('redis-server', 'redis-server', [conf]);
  await waitForPort(port, 'redis-server', p.exited);
  return {
    name: 'redis-server',
    port,
    pids: [p.pid],
    pathPrefix: '',
    stop: () => p.stop(),
    load: (key, file) => setValue(port, key, readFileSync(file)),
  };
}

/** One RESP SET over a raw socket (no client library needed for one command). */
function setValue(port: number, key: string, value: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const k = Buffer.from(key);
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.write(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n`);
      sock.write(k);
      sock.write(`\r\n$${value.length}\r\n`);
      sock.write(value);
      sock.write('\r\n');
    });
    let reply = '';
    sock.on('data', (b: Buffer) => {
      reply += b.toString('latin1');
      if (!reply.endsWith('\r\n')) return;
      sock.end();
      if (reply.startsWith('+OK')) resolve();
      else reject(new Error(`redis SET ${key}: ${reply.trim()}`));
    });
  });
}
