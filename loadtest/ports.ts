/**
 * Loopback ports for the peers: the kernel picks a free one from its
 * ephemeral (high) range, so a run never collides with a developer's own
 * nginx on 8080 or a second run beside it.
 */
import { createConnection, createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Waits until something accepts on the port, or `exited` settles first, or the time is up. */
export async function waitForPort(port: number, what: string, exited: Promise<unknown>, timeoutMs = 20_000) {
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${what} exited before listening on ${port}`);
    if (await tryConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** Waits for an HTTP URL to answer 2xx (a port that accepts is not always ready). */
export async function waitForHttp(
  url: string,
  what: string,
  exited: Promise<unknown>,
  timeoutMs = 30_000,
  get: (url: string) => Promise<Response> = fetch,
) {
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${what} exited before ${url} answered`);
    try {
      const res = await get(url);
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: ${url} not ready within ${timeoutMs} ms (${last})`);
}
