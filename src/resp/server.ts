/**
 * The RESP door (docs/resp.md): a plain TCP server that reads through the same
 * ReadPath as HTTP — RESP is a door, not a second cache. Bounded: connections
 * and what strangers may hold (admission.ts), per-connection input
 * (request-parser.ts) and output (reply.ts), reply bytes across connections
 * (reply-memory.ts), AUTH guesses per address (auth-throttle.ts), idle time.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { TokenSet } from '../auth/tokens.js';
import type { Invalidate } from '../coherence/invalidation.js';
import { MAX_DOOR_THREADS } from '../config/schema.js';
import type { NativeBindings } from '../http/native-binding.js';
import type { AccessLog } from '../log/access.js';
import type { Logger } from '../log/logger.js';
import { LATENCY_BUCKETS, type Metrics } from '../metrics/metrics.js';
import type { Origin } from '../origin/origin.js';
import type { PrefetchJobs } from '../prefetch/jobs.js';
import type { ReadPath } from '../read/read-path.js';
import type { NativeStore } from '../store/native.js';
import { Admission, type Ticket } from './admission.js';
import { AuthThrottle } from './auth-throttle.js';
import type { RespDeps } from './commands/types.js';
import { Connection } from './connection.js';
import { DEFAULT_LIMITS, type RespLimits } from './limits.js';
import { RespMetrics } from './metrics.js';
import type { NativeRespDoorStats } from './native-binding.js';
import { NativeRespDoor } from './native-door.js';
import { ReplyMemory } from './reply-memory.js';
import { ScanCursors } from './scan-cursors.js';
import { type CommandInput, PIPELINE_WINDOW_BYTES, type RespSocket, SocketInput } from './socket.js';

/**
 * Native door: descriptors held past maxClients, so that connections over the limit can still be
 * accepted and told `max number of clients reached` (or make room by closing a stranger).
 */
const NATIVE_SPARE_CONNECTIONS = 1024;

export interface RespServerOptions {
  readonly host: string;
  readonly port: number;
  readonly readPath: ReadPath;
  readonly origin: Origin;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** One line per command (src/log/access.ts); absent: none. */
  readonly access?: AccessLog;
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
  /** Prefetch jobs (WC.PREFETCH), the same ones /v1/prefetch runs; absent: the command answers an error. */
  readonly prefetch?: PrefetchJobs;
  /**
   * Which code reads, parses and writes the connections (resp.door): node's sockets and
   * request-parser.ts ('js', the default), or the addon's I/O threads ('native'). Commands run in
   * the same handlers either way. The native door does not serve TLS.
   */
  readonly door?: 'js' | 'native';
  /** Native door: I/O threads (null or absent: one per core). */
  readonly threads?: number | null;
  /**
   * Native door: the DRAM store and the version bindings (src/http/fast-path.ts, the same ones
   * the native HTTP door reads) from which its I/O threads answer GET, GETRANGE, STRLEN and
   * EXISTS themselves (docs/resp.md, "The fast path"). Null or absent: JavaScript answers all.
   */
  readonly fast?: { readonly store: NativeStore; readonly bindings: NativeBindings } | null;
}

export interface RespServer {
  /** The JavaScript door's listener; null on the native door. */
  readonly server: Server | null;
  /** The native door, when resp.door is native (its counters: native-binding.ts). */
  readonly native: NativeRespDoor | null;
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
  const metrics = new RespMetrics(o.metrics);
  const tokens =
    o.tokens instanceof TokenSet || !o.tokens
      ? (o.tokens ?? null)
      : TokenSet.of([...o.tokens].map((token) => ({ token })));
  const replyMemory = new ReplyMemory(limits.maxReplyMemory, () =>
    metrics.rejectedConnections.inc({ reason: 'reply_memory' }),
  );
  metrics.watchReplyMemory(replyMemory);
  const deps: RespDeps = {
    readPath: o.readPath,
    origin: o.origin,
    limits,
    tokens,
    resp3: o.resp3 ?? true,
    metrics,
    log,
    access: o.access,
    cursors: new ScanCursors(),
    startedAt: Date.now(),
    version: o.version,
    port: () => port,
    connectedClients: () => conns.size,
    invalidate: o.invalidate ?? null,
    prefetch: o.prefetch ?? null,
    replyMemory,
    authThrottle: new AuthThrottle(),
  };
  const admission = new Admission(limits, tokens !== null, metrics);

  /** A TCP connection arrived: a slot for it (closing a stranger if need be), or null. */
  const admit = (raw: RespSocket): Ticket | null => {
    const ticket = admission.admit(raw.remoteAddress);
    if (!ticket) return null;
    raw.once('close', () => ticket.release());
    // Until a Connection owns it (after the TLS handshake), making room just drops it.
    ticket.onEvict = () => raw.destroy();
    return ticket;
  };
  /** Every slot is an authenticated client's: Redis's refusal. */
  const refuse = (socket: RespSocket) => {
    metrics.rejectedConnections.inc({ reason: 'max_clients' });
    socket.on('error', () => {});
    socket.end('-ERR max number of clients reached\r\n');
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const serve = (socket: RespSocket, input: CommandInput, ticket: Ticket) => {
    const c = new Connection(socket, input, deps, nextId++, ticket, (gone) => {
      conns.delete(gone);
      metrics.connections.dec();
    });
    conns.add(c);
    metrics.connections.inc();
    c.start();
  };
  if (o.door === 'native') {
    if (o.tls) throw new Error('resp.door: native does not serve TLS: use resp.door: js with resp.tls');
    let closingNative = false;
    const native = NativeRespDoor.start(
      {
        host: o.host,
        port: o.port,
        threads: o.threads ?? Math.min(availableParallelism(), MAX_DOOR_THREADS),
        auth: tokens !== null,
        maxArgs: limits.maxArgs,
        maxBulkBytes: limits.maxBulkBytes,
        maxQueryBufferBytes: limits.maxQueryBufferBytes,
        maxConnections: limits.maxClients + NATIVE_SPARE_CONNECTIONS,
        pipelineWindowBytes: PIPELINE_WINDOW_BYTES,
        ...(o.fast
          ? { fast: { store: o.fast.store, bindings: o.fast.bindings, maxGetBytes: limits.maxGetBytes } }
          : {}),
        // Fast-path replies are timed in weightcache_request_duration_seconds{protocol="resp"} and
        // logged like the commands JavaScript runs.
        durationBounds: LATENCY_BUCKETS,
        accessLog: o.access?.enabled ?? false,
      },
      (socket) => {
        if (closingNative) {
          socket.destroy();
          return;
        }
        const ticket = admit(socket);
        if (ticket) serve(socket, socket, ticket);
        else refuse(socket);
      },
      (records) => {
        for (const r of records) o.access?.native(r, 'resp');
      },
    );
    port = native.port;
    log.info({ listen: `${o.host}:${port}`, door: 'native' }, 'resp listening');
    // Fast-path hits never reach a Connection: they count in the same request and served-bytes
    // metrics as every other reply, added at scrape time from the I/O threads' counters.
    let seen = { hits: 0, bytes: 0, nvme: 0 };
    const countFast = () => {
      let s: NativeRespDoorStats;
      try {
        s = native.stats();
      } catch {
        return; // stopped: nothing more to add
      }
      const hits = s.fastHits ?? 0;
      const bytes = s.fastBodyBytes ?? 0;
      if (hits > seen.hits) o.metrics.requests.inc({ protocol: 'resp', result: 'ok' }, hits - seen.hits);
      const nvme = s.fastNvmeBodyBytes ?? 0;
      const dram = bytes - nvme;
      if (dram > seen.bytes) o.metrics.servedBytes.inc({ source: 'dram' }, dram - seen.bytes);
      if (nvme > seen.nvme) o.metrics.servedBytes.inc({ source: 'nvme' }, nvme - seen.nvme);
      seen = { hits, bytes: dram, nvme };
    };
    if (o.fast) {
      o.metrics.nativeCounts.add(countFast);
      // Why commands went to JavaScript (weightcache_resp_fastpath_commands_total{result}).
      o.metrics.respDoorStats = () => {
        try {
          return native.stats();
        } catch {
          return undefined; // stopped
        }
      };
      o.metrics.requestDuration.native.set('resp', () => o.metrics.respDoorStats?.()?.fastDurations);
    }
    let closing: Promise<void> | undefined;
    const close = (graceMs: number) => {
      closing ??= (async () => {
        closingNative = true;
        for (const c of conns) c.shutdown();
        const deadline = Date.now() + graceMs;
        while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        countFast();
        o.metrics.nativeCounts.delete(countFast);
        native.stop();
      })();
      return closing;
    };
    return { server: null, native, address: { host: o.host, port }, connections: () => conns.size, close };
  }

  let server: Server;
  if (o.tls) {
    // The slot is taken at the TCP connection, so a stranger stalling the TLS handshake holds
    // it only as long as one that stalls AUTH: the handshake gets preAuthTimeout too. A refusal
    // is sent once the handshake is done, so the client can read it.
    const pending = new Map<string, Ticket | null>();
    const tlsServer = createTlsServer({
      cert: o.tls.cert,
      key: o.tls.key,
      noDelay: true,
      keepAlive: true,
      handshakeTimeout: limits.preAuthTimeoutMs,
    });
    tlsServer.on('connection', (raw: Socket) => {
      const key = `${raw.remoteAddress}|${raw.remotePort}`;
      pending.set(key, admit(raw));
      raw.once('close', () => pending.delete(key));
    });
    tlsServer.on('secureConnection', (socket: Socket) => {
      const key = `${socket.remoteAddress}|${socket.remotePort}`;
      const ticket = pending.get(key);
      pending.delete(key);
      if (ticket) serve(socket, new SocketInput(socket, limits), ticket);
      else refuse(socket);
    });
    server = tlsServer;
  } else {
    server = createServer({ noDelay: true, keepAlive: true }, (socket) => {
      const ticket = admit(socket);
      if (ticket) serve(socket, new SocketInput(socket, limits), ticket);
      else refuse(socket);
    });
  }

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
  return { server, native: null, address: { host: o.host, port }, connections: () => conns.size, close };
}
