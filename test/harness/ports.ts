/** Free ports for tests that must name a port before a process binds it (a config file, a member list). */
import { createServer } from 'node:net';

/**
 * A port free on `host` right now (the kernel picks it). Another process may
 * take it before the caller binds: callers that can retry on EADDRINUSE do.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
