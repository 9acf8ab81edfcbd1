/**
 * A TCP proxy in front of a real server (a node's transport port), that can
 * partition: stop moving bytes both ways, like a network that drops every
 * packet, while both ends keep their sockets open. Healing resumes the flow
 * with nothing lost or reordered (TCP would retransmit; here the bytes simply
 * wait in the kernel buffers), so the peers see a long stall, not corruption.
 *
 *   const proxy = await startTcpProxy({ listen: '127.0.0.21', target: '127.0.0.31:7000' });
 *   proxy.address        // '127.0.0.21:PORT'
 *   proxy.partition()    // from now on, nothing passes (new connections too)
 *   proxy.heal()
 *   await proxy.stop()
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  readonly address: string;
  readonly port: number;
  readonly connections: () => number;
  partition(): void;
  heal(): void;
  stop(): Promise<void>;
}

export async function startTcpProxy(opts: {
  listen: string;
  port?: number;
  target: string;
}): Promise<TcpProxy> {
  const i = opts.target.lastIndexOf(':');
  const target = { host: opts.target.slice(0, i), port: Number(opts.target.slice(i + 1)) };
  const pairs = new Set<[Socket, Socket]>();
  let partitioned = false;

  const server = createServer((client) => {
    const upstream = connect(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (partitioned) for (const s of pair) s.pause();
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.listen, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: `${opts.listen}:${port}`,
    port,
    connections: () => pairs.size,
    partition() {
      partitioned = true;
      // Paused sockets stop reading: the bytes wait in kernel buffers, nothing is delivered.
      for (const pair of pairs) for (const s of pair) s.pause();
    },
    heal() {
      partitioned = false;
      for (const pair of pairs) for (const s of pair) s.resume();
    },
    async stop() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await closed;
    },
  };
}
