/**
 * The HTTP door: hono routes on a plain node:http server with bounded
 * connections and timeouts. Errors become `{code, message}` JSON here and
 * nowhere else; request metrics are taken around every request.
 */
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener, RequestError } from '@hono/node-server';
import { Hono } from 'hono';
import type { Invalidate } from '../coherence/invalidation.js';
import { CacheError } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type AdminDeps, adminRoutes } from './admin.js';
import { authMiddleware, type HttpAuthOptions } from './auth.js';
import type { Door } from './door.js';
import { errorBody, httpStatusOf } from './errors.js';
import { invalidateRoutes } from './invalidate.js';
import { decodeSegments, rawPath } from './object-path.js';
import { BodyAborted, type HttpEnv, type ObjectRouteDeps, objectHandler } from './objects.js';
import { type PrefetchDeps, prefetchRoutes } from './prefetch.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Also serve on this unix socket (a sidecar's local front door). */
  readonly socketPath?: string | null;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly objects: ObjectRouteDeps;
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
}

export interface HttpServer {
  readonly server: Server;
  readonly address: { host: string; port: number };
  readonly socketPath: string | null;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export function buildApp(o: HttpServerOptions): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  // Dot segments are refused on the raw target, before URL normalisation
  // could turn `/v1/objects/c/../../x` into some other route.
  app.use('*', async (c, next) => {
    const raw = rawPath(c.env.incoming.url ?? '');
    // Auth and the handlers read the raw target's path (origin- or absolute-form, RFC 9112
    // §3.2.2: the AWS CRT client that Run:ai's streamer uses sends `GET http://host/path`); hono
    // routes on the same path, decoded. They must name the same route, so the route part may not
    // be encoded: `/v1/%70refetch` would otherwise reach a handler past checks made on another path.
    if (raw.split('/', 3).some((seg) => seg.includes('%'))) {
      throw new CacheError('BAD_REQUEST', 'percent-encoding is not allowed in the route part of the path');
    }
    decodeSegments(raw);
    await next();
  });
  if (o.onlyDoor) {
    o.onlyDoor.mount(app, '');
    return withErrors(app, o);
  }
  if (o.auth) app.use('*', authMiddleware({ ...o.auth, doorPaths: (o.doors ?? []).map((d) => d.path) }));
  for (const d of o.doors ?? []) d.mount(app, d.path);
  const handler = objectHandler(o.objects);
  app.on(['GET', 'HEAD'], '/v1/objects/*', handler);
  adminRoutes(app, o.admin);
  if (o.prefetch) prefetchRoutes(app, o.prefetch);
  if (o.invalidate) {
    invalidateRoutes(app, {
      invalidate: o.invalidate,
      log: o.log,
      metrics: o.metrics,
      tokens: o.auth?.tokens ?? null,
    });
  }
  return withErrors(app, o);
}

function withErrors(app: Hono<HttpEnv>, o: HttpServerOptions): Hono<HttpEnv> {
  app.notFound((c) =>
    c.body(errorBody('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), 404, {
      'Content-Type': 'application/json',
    }),
  );
  app.onError((err, c) => {
    const res = c.env.outgoing;
    if (err instanceof BodyAborted) {
      o.log.warn({ err: err.cause, path: c.req.path }, err.message);
      return new Response(null);
    }
    const e = CacheError.from(err);
    const status = httpStatusOf(e.code);
    if (status >= 500) o.log.warn({ code: e.code, err: e.cause ?? e, path: c.req.path }, e.message);
    if (res.headersSent) {
      res.destroy();
      return new Response(null);
    }
    return c.body(errorBody(e.code, e.message), status as 400, { 'Content-Type': 'application/json' });
  });
  return app;
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServer> {
  const app = buildApp(o);
  const listener = getRequestListener((req, env) => app.fetch(req, env), {
    overrideGlobalObjects: false,
    // Requests the adapter refuses before the app sees them (a raw backslash in
    // the path, a bad Host) still get our JSON error, not an empty 400.
    errorHandler: (e) => {
      const bad = e instanceof RequestError;
      const code = bad && /backslash/i.test(e.message) ? 'BAD_KEY' : bad ? 'BAD_REQUEST' : 'INTERNAL';
      return new Response(errorBody(code, e instanceof Error ? e.message : String(e)), {
        status: httpStatusOf(code),
        headers: { 'Content-Type': 'application/json' },
      });
    },
  });
  const make = (tls?: { cert: Buffer; key: Buffer } | null): Server => {
    const options = {
      keepAliveTimeout: o.idleTimeoutMs,
      headersTimeout: 30_000,
      requestTimeout: 0,
      maxHeaderSize: 16 * 1024,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const done = o.metrics.requestDuration.startTimer({ protocol: 'http' });
      res.once('close', () => {
        done();
        o.metrics.requests.inc({ protocol: 'http', result: resultOf(res) });
      });
      void listener(req, res);
    };
    // https.Server is an http.Server for everything below (timeouts, close, connections).
    const server: Server = tls
      ? (createHttpsServer({ ...options, cert: tls.cert, key: tls.key }, onRequest) as unknown as Server)
      : createServer(options, onRequest);
    server.maxConnections = o.maxConnections;
    // An idle keep-alive socket is closed after idleTimeoutMs; a stalled one too.
    server.timeout = o.idleTimeoutMs;
    return server;
  };
  const server = make(o.tls);
  await listen(server, (cb) => server.listen(o.port, o.host, cb));
  let unix: Server | undefined;
  if (o.socketPath) {
    await rm(o.socketPath, { force: true }); // a stale socket from a crash would make listen fail
    const u = make();
    await listen(u, (cb) => u.listen(o.socketPath!, cb));
    unix = u;
  }
  const addr = server.address() as AddressInfo;
  return {
    server,
    address: { host: addr.address, port: addr.port },
    socketPath: o.socketPath ?? null,
    close: async (graceMs) => {
      await Promise.all([closeGracefully(server, graceMs), unix && closeGracefully(unix, graceMs)]);
    },
  };
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
