/**
 * The RESP door (docs/resp.md): a plain TCP server that reads
 * through the same ReadPath as HTTP — RESP is a door, not a second cache.
 * Bounded: connections (maxClients), per-connection input (request-parser.ts)
 * and output (reply.ts), idle time.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { TokenSet } from '../auth/tokens.js';
import type { Invalidate } from '../coherence/invalidation.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Origin } from '../origin/origin.js';
import type { ReadPath } from '../read/read-path.js';
import type { RespDeps } from './commands/types.js';
import { Connection } from './connection.js';
import { DEFAULT_LIMITS, type RespLimits } from './limits.js';
import { RespMetrics } from './metrics.js';
import { ScanCursors } from './scan-cursors.js';

export interface RespServerOptions {
  readonly host: string;
  readonly port: number;
  readonly readPath: ReadPath;
  readonly origin: Origin;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly version: string;
  readonly limits?: Partial<RespLimits>;
  /**
   * Tokens AUTH accepts; null or absent: no auth (as Redis with no requirepass).
   * A plain set of strings is accepted too (every token reads every container).
   */
  readonly tokens?: TokenSet | ReadonlySet<string> | null;
  /** Serve RESP over TLS. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | null;
  /** Accept HELLO 3 (default true). */
  readonly resp3?: boolean;
  /** The coherence layer's invalidation (WC.INVALIDATE); absent: the command answers an error. */
  readonly invalidate?: Invalidate;
}

export interface RespServer {
  readonly server: Server;
  readonly address: { host: string; port: number };
  readonly connections: () => number;
  /** Stops accepting; idle connections close now, busy ones after their command or graceMs. */
  close(graceMs: number): Promise<void>;
}

export async function startRespServer(o: RespServerOptions): Promise<RespServer> {
  const limits: RespLimits = { ...DEFAULT_LIMITS, ...o.limits };
  const conns = new Set<Connection>();
  const log = o.log.child({ door: 'resp' });
  let nextId = 1;
  let port = o.port;
  const deps: RespDeps = {
    readPath: o.readPath,
    origin: o.origin,
    limits,
    tokens:
      o.tokens instanceof TokenSet || !o.tokens
        ? (o.tokens ?? null)
        : TokenSet.of([...o.tokens].map((token) => ({ token }))),
    resp3: o.resp3 ?? true,
    metrics: new RespMetrics(o.metrics),
    log,
    cursors: new ScanCursors(),
    startedAt: Date.now(),
    version: o.version,
    port: () => port,
    connectedClients: () => conns.size,
    invalidate: o.invalidate ?? null,
  };

  const onSocket = (socket: Socket) => {
    if (conns.size >= limits.maxClients) {
      deps.metrics.rejectedConnections.inc({ reason: 'max_clients' });
      socket.on('error', () => {});
      socket.end('-ERR max number of clients reached\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const c = new Connection(socket, deps, nextId++, (gone) => {
      conns.delete(gone);
      deps.metrics.connections.dec();
    });
    conns.add(c);
    deps.metrics.connections.inc();
    c.start();
  };
  const server: Server = o.tls
    ? createTlsServer({ cert: o.tls.cert, key: o.tls.key, noDelay: true, keepAlive: true }, onSocket)
    : createServer({ noDelay: true, keepAlive: true }, onSocket);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr && typeof addr === 'object') port = addr.port;
  server.on('error', (err) => log.error({ err }, 'resp server error'));
  log.info({ listen: `${o.host}:${port}` }, 'resp listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs: number) => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const c of conns) c.shutdown();
      setTimeout(() => {
        for (const c of conns) c.destroy();
      }, graceMs).unref();
    });
    return closing;
  };
  return { server, address: { host: o.host, port }, connections: () => conns.size, close };
}
