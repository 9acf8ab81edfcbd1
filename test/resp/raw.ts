/** A raw TCP client for protocol tests: send exact bytes, read until the server closes. */

import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';

export interface Exchange {
  readonly data: Buffer;
  /** The server closed (FIN or reset) before the deadline. */
  readonly closed: boolean;
}

/**
 * Sends `parts` (each written after the previous is flushed) and collects the
 * reply until the server closes the connection or `waitMs` passes.
 */
export async function exchange(
  port: number,
  parts: Array<Buffer | string>,
  waitMs = 3000,
): Promise<Exchange> {
  const sock = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let closed = false;
  sock.on('data', (d) => chunks.push(d));
  sock.on('error', () => {});
  const done = new Promise<void>((resolve) => {
    sock.on('close', () => {
      closed = true;
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  for (const p of parts) {
    if (sock.destroyed) break;
    await new Promise<void>((resolve) => sock.write(p, () => resolve()));
  }
  const timer = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref());
  await Promise.race([done, timer]);
  sock.destroy();
  return { data: Buffer.concat(chunks), closed };
}

/** An open raw connection for request/response steps. */
export async function open(port: number): Promise<{ sock: Socket; read: (n?: number) => Promise<string> }> {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.once('connect', resolve));
  let buf = '';
  const waiters: Array<() => void> = [];
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  sock.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  /** Resolves with what arrived once at least `n` bytes are there (or the socket closed). */
  const read = async (n = 1) => {
    while (buf.length < n && !sock.destroyed && !sock.readableEnded) {
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    const out = buf;
    buf = '';
    return out;
  };
  return { sock, read };
}

/**
 * Whether a test that needs `bin` runs: skipped only when the binary is
 * missing AND this is not CI — in CI a missing binary must fail the test.
 */
export function hasBinary(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function shouldRun(bin: string): boolean {
  return hasBinary(bin) || Boolean(process.env.CI);
}
