/**
 * The HTTP door: hono routes on a plain node:http server. What happens to a
 * request, in order:
 *   1. connections.ts admits the connection (caps, per-address limit,
 *      reserve, first-request timeout) and queues the request behind the
 *      connection's earlier ones (one at a time, bounded pipelining);
 *   2. target.ts parses the request target once; a bad one is answered here;
 *   3. hono routes on the canonical target, auth.ts authorises on the same
 *      parse, the handler runs (and checks its own right again).
 * Errors become `{code, message}` JSON here and nowhere else (errors.ts),
 * node's own parser errors included (client-errors.ts); request metrics are
 * taken around every request.
 */
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener, RequestError } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { MAX_EVENT_DELIVERY_BYTES } from '../coherence/event-grid.js';
import type { Invalidate } from '../coherence/invalidation.js';
import { CacheError } from '../errors/cache-error.js';
import type { AccessLine, AccessLog } from '../log/access.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type AdminDeps, adminRoutes } from './admin.js';
import { authMiddleware, type HttpAuthOptions } from './auth.js';
import { answerClientErrors } from './client-errors.js';
import { ConnectionGovernor } from './connections.js';
import type { Door } from './door.js';
import { errorBody, httpStatusOf, rawErrorResponse, sendError } from './errors.js';
import { invalidateRoutes } from './invalidate.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, reserveOf } from './limits.js';
import type { NativeFastPathOptions } from './native-binding.js';
import { fillForDoor } from './native-fill.js';
import { type NativeListener, startNativeListener } from './native-server.js';
import { BodyAborted, type HttpEnv, type ObjectRouteDeps, objectHandler } from './objects.js';
import { type PrefetchDeps, prefetchRoutes } from './prefetch.js';
import { SendBudget } from './send-budget.js';
import { attachSendLimits, type SendLimits } from './send-read.js';
import { ClientGone } from './stream.js';
import { adoptTarget } from './target.js';

/** A request's whole body must have arrived this long after its first byte (node's requestTimeout). */
const REQUEST_TIMEOUT_MS = 60_000;

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Also serve on this unix socket (a sidecar's local front door). */
  readonly socketPath?: string | null;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  /** The rest of the door's limits (limits.ts); absent keys take their defaults. */
  readonly limits?: Partial<HttpLimits>;
  /**
   * The send budget shared by every listener of the process (send-read.ts);
   * absent: this server makes its own from `limits`, with a read-ahead of 4.
   */
  readonly send?: SendLimits;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** One line per request, for every route and door on this server (src/log/access.ts); absent: none. */
  readonly access?: AccessLog;
  /** The object route's dependencies; its tokens come from `auth`. */
  readonly objects: Omit<ObjectRouteDeps, 'tokens'>;
  readonly admin: AdminDeps;
  /** Absent: no /v1/prefetch (e.g. a sidecar). */
  readonly prefetch?: PrefetchDeps;
  /** The coherence layer's invalidation (POST /v1/invalidate, POST /v1/events/azure); absent: no such routes. */
  readonly invalidate?: Invalidate;
  /** Bearer tokens; absent: no auth. */
  readonly auth?: HttpAuthOptions;
  /** Serve HTTPS on the TCP listener (the unix socket stays plain: it is local by construction). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | null;
  /** Front doors (S3, Azure Blob, Hub), each under its path; they authenticate their own requests. */
  readonly doors?: readonly Door[];
  /** Serve only this door, at the root (the door's own listener). */
  readonly onlyDoor?: Door;
  /**
   * Serve the TCP listener with the native door's I/O threads (native-server.ts); absent or
   * null: node:http. A TLS listener and the unix socket stay on node:http.
   */
  readonly native?: NativeDoorLimits | null;
}

/** The native door's own bounds (http.threads and the parser limits; docs/configuration.md). */
export interface NativeDoorLimits {
  readonly threads: number;
  readonly maxRequestLineBytes: number;
  readonly maxHeaderCount: number;
  readonly maxHeaderBytes: number;
  readonly maxBufferedBytes: number;
  /** Hits answered on the I/O threads (src/http/fast-path.ts); absent: JavaScript answers every request. */
  readonly fast?: NativeFastPathOptions | null;
}

export interface HttpServer {
  /** The node:http server of the TCP listener; null when the native door serves it. */
  readonly server: Server | null;
  /** The native door serving the TCP listener, if it does. */
  readonly native: NativeListener | null;
  readonly address: { host: string; port: number };
  readonly socketPath: string | null;
  /** Open connections on every listener. */
  connections(): number;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

function buildApp(o: HttpServerOptions, limits: HttpLimits): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  const tokens = o.auth?.tokens ?? null;
  if (o.onlyDoor) {
    o.onlyDoor.mount(app, '');
    return withErrors(app, o);
  }
  if (o.auth) app.use('*', authMiddleware({ ...o.auth, doorPaths: (o.doors ?? []).map((d) => d.path) }));
  for (const d of o.doors ?? []) d.mount(app, d.path);
  const handler = objectHandler({ ...o.objects, tokens });
  app.on(['GET', 'HEAD'], '/v1/objects/*', handler);
  adminRoutes(app, { ...o.admin, tokens, metricsCacheMs: limits.metricsCacheMs });
  if (o.prefetch) prefetchRoutes(app, { ...o.prefetch, tokens });
  if (o.invalidate) {
    invalidateRoutes(app, { invalidate: o.invalidate, log: o.log, metrics: o.metrics, tokens });
  }
  return withErrors(app, o);
}

function withErrors(app: Hono<HttpEnv>, o: HttpServerOptions): Hono<HttpEnv> {
  app.notFound((c) => {
    // HEAD is routed as GET and gets GET's answer (same message, same Content-Length), without the body.
    const method = c.req.method === 'HEAD' ? 'GET' : c.req.method;
    sendError(c.env.outgoing, c.req.method, 'NOT_FOUND', `no route for ${method} ${c.req.path}`);
    return RESPONSE_ALREADY_SENT;
  });
  app.onError((err, c) => {
    const res = c.env.outgoing;
    if (err instanceof BodyAborted || err instanceof ClientGone || res.destroyed) {
      // The client left (or a body failed after its status line): nothing can be answered.
      const byClient = !(err instanceof BodyAborted) || err.byClient;
      if (byClient) o.log.debug({ path: c.req.path }, 'http: client went away before its answer was sent');
      else o.log.warn({ err: err.cause ?? err, path: c.req.path }, err.message);
      res.destroy();
      return RESPONSE_ALREADY_SENT;
    }
    const e = CacheError.from(err);
    if (httpStatusOf(e.code) >= 500)
      o.log.warn({ code: e.code, err: e.cause ?? e, path: c.req.path }, e.message);
    if (res.headersSent) {
      res.destroy();
      return RESPONSE_ALREADY_SENT;
    }
    // Headers set before the error (WWW-Authenticate, Connection: close) go out with it.
    sendError(res, c.req.method, e.code, e.message, Object.fromEntries(c.res.headers));
    return RESPONSE_ALREADY_SENT;
  });
  return app;
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServer> {
  const limits: HttpLimits = {
    ...DEFAULT_HTTP_LIMITS,
    ...o.limits,
    maxConnections: o.maxConnections,
    idleTimeoutMs: o.idleTimeoutMs,
  };
  const app = buildApp(o, limits);
  const send: SendLimits = o.send ?? {
    budget: new SendBudget({
      maxBytes: limits.maxInFlightBytes,
      maxSlowBytes: limits.maxSlowClientBytes,
      slowAfterMs: limits.slowClientAfterMs,
      queueMs: limits.queueTimeoutMs,
      metrics: o.metrics,
    }),
    readAhead: 4,
    chunkSize: o.objects.readPath.chunkSize,
  };
  const authRequired = (o.auth?.tokens ?? null) !== null;
  const listener = getRequestListener((req, env) => app.fetch(req, env), {
    overrideGlobalObjects: false,
    // HTTP/1.0 may omit Host (HTTP/1.1 without one was refused in onRequest).
    hostname: 'localhost',
    // Requests the adapter refuses before the app sees them (a bad Host) still get our JSON error.
    errorHandler: (e) => {
      const code = e instanceof RequestError ? 'BAD_REQUEST' : 'INTERNAL';
      const message = e instanceof Error ? e.message : String(e);
      return new Response(JSON.stringify({ code, message }), {
        status: httpStatusOf(code),
        headers: { 'Content-Type': 'application/json' },
      });
    },
  });
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    try {
      // llhttp takes HTTP/2.0 (or 1.x's bigger brothers) as a version; only 1.x is served (RFC 9112 §2.3).
      if (req.httpVersionMajor !== 1) {
        const body = errorBody(
          'UNSUPPORTED',
          `HTTP/${req.httpVersion} is not served on this port, only HTTP/1.x`,
        );
        res.shouldKeepAlive = false;
        res.writeHead(505, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      refuseBadHost(req);
      const t = adoptTarget(req);
      attachSendLimits(res, send);
      if (t.form === 'asterisk') {
        // OPTIONS * asks about the server as a whole (RFC 9110 §9.3.7).
        res.writeHead(200, { Allow: 'GET, HEAD, POST, OPTIONS', 'Content-Length': 0 }).end();
        return;
      }
    } catch (err) {
      const e = CacheError.from(err);
      sendError(res, req.method, e.code, e.message);
      return;
    }
    void listener(req, res);
  };
  /**
   * Metrics and the access log around every request, whichever door read it.
   * `run` is handed the handler to call when the request's turn comes: the
   * access record is entered then, not while the request queued behind its
   * connection's earlier ones.
   */
  const measured = (req: IncomingMessage, res: ServerResponse, run: (handleNow: () => void) => void) => {
    const done = o.metrics.requestDuration.startTimer({ protocol: 'http' });
    const record = o.access?.open(req.method ?? '', req.url ?? '', req.socket?.remoteAddress);
    res.once('close', () => {
      done();
      o.metrics.requests.inc({ protocol: 'http', result: resultOf(res) });
      o.access?.close(record, accessLine(req, res));
    });
    run(() => (record ? o.access!.within(record, () => handle(req, res)) : handle(req, res)));
  };
  const servers: Array<{ server: Server; governor: ConnectionGovernor }> = [];
  const make = (tls: { cert: Buffer; key: Buffer } | null, trusted: boolean): Server => {
    const options = {
      keepAliveTimeout: limits.idleTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: REQUEST_TIMEOUT_MS,
      // node checks headersTimeout and requestTimeout this often (its default, 30 s, doubles them).
      connectionsCheckingInterval: 1_000,
      maxHeaderSize: 16 * 1024,
      // A missing Host is answered in onRequest, with our JSON body.
      requireHostHeader: false,
    };
    let governor: ConnectionGovernor | undefined;
    const onRequest = (req: IncomingMessage, res: ServerResponse) =>
      measured(req, res, (handleNow) => governor!.dispatch(req, res, handleNow));
    // https.Server is an http.Server for everything below (timeouts, close, connections).
    const server: Server = tls
      ? (createHttpsServer(
          { ...options, cert: tls.cert, key: tls.key, handshakeTimeout: limits.firstRequestTimeoutMs },
          onRequest,
        ) as unknown as Server)
      : createServer(options, onRequest);
    // An idle keep-alive socket is closed after idleTimeoutMs; a stalled one too.
    server.timeout = limits.idleTimeoutMs;
    governor = new ConnectionGovernor(
      server,
      {
        maxConnections: limits.maxConnections,
        maxPerAddress: limits.maxConnectionsPerAddress,
        reserved: reserveOf(limits, authRequired),
        firstRequestTimeoutMs: limits.firstRequestTimeoutMs,
        maxPipelined: limits.maxPipelined,
        authRequired,
        trusted,
      },
      o.metrics,
      o.log,
      tls !== null,
    );
    // CONNECT (authority-form) would make this a proxy: refused, the connection closed.
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      socket.on('error', () => {});
      socket.end(rawErrorResponse('BAD_REQUEST', 'CONNECT is not served: this server is not a proxy'));
    });
    // An Expect other than 100-continue is ignored (RFC 9110 §10.1.1 allows it) rather than answered 417.
    server.on('checkExpectation', onRequest);
    answerClientErrors(server, o.log);
    servers.push({ server, governor });
    return server;
  };
  let server: Server | null = null;
  let native: NativeListener | null = null;
  let address: { host: string; port: number };
  if (o.native && !o.tls) {
    native = startNativeListener({
      door: {
        host: o.host,
        port: o.port,
        threads: o.native.threads,
        maxConnections: limits.maxConnections,
        maxPerAddress: limits.maxConnectionsPerAddress ?? 0,
        authRequired,
        reserved: reserveOf(limits, authRequired),
        maxInFlight: limits.maxPipelined,
        maxBufferedBytes: o.native.maxBufferedBytes,
        firstRequestTimeoutMs: limits.firstRequestTimeoutMs,
        headerTimeoutMs: limits.headersTimeoutMs,
        idleTimeoutMs: limits.idleTimeoutMs,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        // Fast-path answers queued for slow clients hold at most this (each thread past it by one answer).
        maxFastQueuedBytes: limits.maxInFlightBytes,
        maxRequestLineBytes: o.native.maxRequestLineBytes,
        maxHeaderCount: o.native.maxHeaderCount,
        maxHeaderBytes: o.native.maxHeaderBytes,
        // The largest body any route reads (an Event Grid delivery): a longer one is refused by the
        // parser with 413 before it is buffered, rather than read whole and posted to JavaScript.
        maxBodyBytes: MAX_EVENT_DELIVERY_BYTES,
        // Bodies handed to the application and unanswered, per connection: reading stops at one
        // largest body (so a connection holds at most two: the window and the one being read).
        maxPostedBodyBytes: MAX_EVENT_DELIVERY_BYTES,
        ...(o.native.fast ? { fast: o.native.fast } : {}),
      },
      keepAliveTimeoutMs: limits.idleTimeoutMs,
      onRequest: (req, res) => measured(req, res, (handleNow) => handleNow()),
      // A fast-path miss waits on its I/O thread while the read path fills it, then is answered there.
      fill: (f, signal) => fillForDoor(o.objects.readPath, f, signal),
      log: o.log,
      metrics: o.metrics,
      ...(o.access ? { access: o.access } : {}),
    });
    address = { host: o.host, port: native.port };
  } else {
    if (o.native) o.log.warn('http.door is native, but TLS is served by the JavaScript door (node:https)');
    const s = make(o.tls ?? null, false);
    await listen(s, (cb) => s.listen(o.port, o.host, cb));
    const a = s.address() as AddressInfo;
    server = s;
    address = { host: a.address, port: a.port };
  }
  let unix: Server | undefined;
  if (o.socketPath) {
    await rm(o.socketPath, { force: true }); // a stale socket from a crash would make listen fail
    const u = make(null, true);
    await listen(u, (cb) => u.listen(o.socketPath!, cb));
    unix = u;
  }
  return {
    server,
    native,
    address,
    socketPath: o.socketPath ?? null,
    connections: () => servers.reduce((n, s) => n + s.governor.size, 0) + (native?.connections() ?? 0),
    close: async (graceMs) => {
      await Promise.all([
        server && closeGracefully(server, graceMs),
        native?.close(graceMs),
        unix && closeGracefully(unix, graceMs),
      ]);
    },
  };
}

/** RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host header. */
function refuseBadHost(req: IncomingMessage): void {
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) throw new CacheError('BAD_REQUEST', 'more than one Host header');
  if (hosts === 0 && req.httpVersion === '1.1')
    throw new CacheError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
}

function listen(server: Server, start: (cb: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    start(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Status and body bytes for the access log: Content-Length when the answer went out whole, else what was served. */
function accessLine(req: IncomingMessage, res: ServerResponse): AccessLine {
  if (!res.writableFinished) return { status: res.statusCode, aborted: true };
  const length = Number(res.getHeader('content-length'));
  if (req.method === 'HEAD') return { status: res.statusCode, bytes: 0 };
  return { status: res.statusCode, ...(Number.isFinite(length) ? { bytes: length } : {}) };
}

function resultOf(res: ServerResponse): string {
  if (!res.writableFinished) return 'aborted';
  const s = res.statusCode;
  if (s === 304) return 'not_modified';
  if (s < 400) return 'ok';
  return s < 500 ? 'client_error' : 'server_error';
}

async function closeGracefully(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(timer);
}
