/**
 * A proxy in front of a real node that flips one byte in the body of the
 * next `times` responses carrying X-Chunk-Crc32c (chunk reads), leaving
 * framing and headers intact: corruption on the wire that only an end-to-end
 * checksum can catch. JSON endpoints pass through untouched.
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface CorruptingProxy {
  readonly url: string;
  /** Corrupt the next `n` chunk responses. */
  corrupt(n: number): void;
  readonly corrupted: () => number;
  stop(): Promise<void>;
}

export async function startCorruptingProxy(target: string): Promise<CorruptingProxy> {
  const t = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  let budget = 0;
  let corrupted = 0;
  const server = createServer((req, res) => {
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let flip = upRes.headers['x-chunk-crc32c'] !== undefined && budget > 0;
        if (flip) {
          budget--;
          corrupted++;
        }
        upRes.on('data', (d: Buffer) => {
          if (flip && d.length > 0) {
            d = Buffer.from(d);
            d[d.length >> 1] = (d[d.length >> 1] as number) ^ 0x01;
            flip = false;
          }
          res.write(d);
        });
        upRes.on('end', () => res.end());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    corrupt: (n) => {
      budget = n;
    },
    corrupted: () => corrupted,
    async stop() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
