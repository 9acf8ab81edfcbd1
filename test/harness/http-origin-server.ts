/**
 * A real node:http server that behaves like a static blob server, for use as
 * an origin in tests, plus fault knobs that can be turned at runtime.
 *
 *   const srv = await startHttpOriginServer();            // 127.0.0.1, free port
 *   srv.baseUrl                                           // 'http://127.0.0.1:PORT'
 *   srv.put('ctr', 'a/b.bin', bytes)                      // new version: new strong ETag, Last-Modified = now
 *   srv.remove('ctr', 'a/b.bin')
 *   srv.setFault({ mode: 'stall' })                       // every request from now on
 *   srv.setFault({ mode: 'short-body', methods: ['GET'], times: 1 })  // next GET only
 *   srv.setFault({ mode: 'ok' })
 *   srv.requests                                          // live counts: { GET, HEAD, total }
 *   srv.resetRequests()
 *   srv.seen                                              // the last 256 requests: { method, headers }
 *   await srv.stop()                                      // closes every socket, stalled ones too
 *
 * Objects live in memory at `/{container}/{key}`, each path segment
 * percent-decoded (so a literal key '%2e%2e/x' is requested as '/ctr/%252e%252e/x').
 * Implements GET/HEAD, a single `Range` (bounded, open-ended, suffix → 206;
 * unsatisfiable → 416 with `Content-Range: bytes * /size`; multiple ranges are
 * ignored → 200), `If-Match` / `If-Unmodified-Since` (→ 412), `If-None-Match`
 * (→ 304), `ETag`, `Last-Modified`, `Content-Length`, keep-alive.
 * Options `etag: false` / `lastModified: false` omit those headers, to test
 * origins that fall back to Last-Modified or must refuse the server.
 *
 * Fault modes (`delayMs` delays any mode, including 'ok'):
 * - 'stall': never answers (with delayMs: answers normally after it)
 * - 'short-body': correct headers, half the body, then the socket is destroyed
 * - 'long-body': one byte more than asked, with Content-Length saying so
 * - 'error-500': 500 with a small body
 * - 'wrong-etag': conditions are evaluated against the true ETag, but responses carry another
 * - 'wrong-content-range': 206 whose Content-Range starts one byte later than asked (same length)
 * - 'ignore-range': 200 with the whole object whatever the Range
 * - 'close-immediately': the socket is destroyed as soon as the request arrives
 * - 'late-response': answered from the objects as they were when the request
 *   arrived, but only after `delayMs` (a slow response carrying a version that
 *   has since been replaced: the late fill of the classic cache race)
 *
 * To break a server you do not control (Azurite, a cache node), put
 * `startFaultProxy` (re-exported here from ./fault-proxy.ts) in front of it.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export { type FaultProxy, type ProxyFault, type ProxyFaultMode, startFaultProxy } from './fault-proxy.js';

export type FaultMode =
  | 'ok'
  | 'stall'
  | 'short-body'
  | 'long-body'
  | 'error-500'
  | 'wrong-etag'
  | 'wrong-content-range'
  | 'ignore-range'
  | 'close-immediately'
  | 'late-response';

export interface Fault {
  readonly mode: FaultMode;
  readonly delayMs?: number;
  /** Only requests with these methods are affected (default: all). */
  readonly methods?: readonly ('GET' | 'HEAD')[];
  /** Affect only the next `times` matching requests, then behave as 'ok'. */
  readonly times?: number;
}

export interface HttpOriginServerOptions {
  /** Send ETag headers (default true). */
  readonly etag?: boolean;
  /** Send Last-Modified headers (default true). */
  readonly lastModified?: boolean;
}

export interface HttpOriginServer {
  readonly baseUrl: string;
  readonly port: number;
  put(container: string, key: string, bytes: Buffer): void;
  remove(container: string, key: string): void;
  setFault(fault: Fault): void;
  readonly requests: { GET: number; HEAD: number; total: number };
  resetRequests(): void;
  /** The most recent requests (at most SEEN_MAX, oldest first), with the headers as received. */
  readonly seen: readonly ReceivedRequest[];
  stop(): Promise<void>;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
}

const SEEN_MAX = 256;

interface Stored {
  readonly bytes: Buffer;
  readonly etag: string;
  readonly lastModified: Date;
}

export async function startHttpOriginServer(opts: HttpOriginServerOptions = {}): Promise<HttpOriginServer> {
  const objects = new Map<string, Stored>();
  const requests = { GET: 0, HEAD: 0, total: 0 };
  const seen: ReceivedRequest[] = [];
  let fault: Fault = { mode: 'ok' };
  let generation = 0;
  const sockets = new Set<Socket>();

  const faultFor = (method: string): Fault => {
    if (fault.mode === 'ok' && !fault.delayMs) return fault;
    if (fault.methods && !fault.methods.includes(method as 'GET' | 'HEAD')) return { mode: 'ok' };
    if (fault.times !== undefined) {
      if (fault.times <= 0) return { mode: 'ok' };
      const current = fault;
      fault = { ...fault, times: fault.times - 1 };
      return current;
    }
    return fault;
  };

  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') requests[method]++;
    requests.total++;
    seen.push({ method, headers: req.headers });
    if (seen.length > SEEN_MAX) seen.shift();
    const f = faultFor(method);
    if (f.mode === 'close-immediately') {
      req.socket.destroy();
      return;
    }
    if (f.mode === 'stall' && !f.delayMs) return; // hold the socket open, say nothing
    const store = f.mode === 'late-response' ? new Map(objects) : objects;
    const go = (): void => {
      if (!res.socket || res.socket.destroyed) return;
      serve(req, res, f, store);
    };
    if (f.delayMs) setTimeout(go, f.delayMs);
    else go();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const serve = (req: IncomingMessage, res: ServerResponse, f: Fault, store: Map<string, Stored>): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': '0' }).end();
      return;
    }
    if (f.mode === 'error-500') {
      const body = 'injected failure';
      res.writeHead(500, { 'Content-Length': String(body.length) }).end(method === 'HEAD' ? undefined : body);
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let id: string;
    try {
      id = path.slice(1).split('/').map(decodeURIComponent).join('/');
    } catch {
      res.writeHead(400, { 'Content-Length': '0' }).end();
      return;
    }
    const obj = store.get(id);
    if (!obj) {
      res.writeHead(404, { 'Content-Length': '0' }).end();
      return;
    }
    const size = obj.bytes.length;
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
    };
    if (opts.etag !== false) headers.ETag = f.mode === 'wrong-etag' ? `"lie-${obj.etag.slice(1)}` : obj.etag;
    if (opts.lastModified !== false) headers['Last-Modified'] = obj.lastModified.toUTCString();

    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && !etagListMatches(ifMatch, obj.etag)) {
      res.writeHead(412, { 'Content-Length': '0' }).end();
      return;
    }
    const ius = req.headers['if-unmodified-since'];
    if (ifMatch === undefined && ius !== undefined) {
      const t = Date.parse(ius);
      if (!Number.isNaN(t) && Math.floor(obj.lastModified.getTime() / 1000) > Math.floor(t / 1000)) {
        res.writeHead(412, { 'Content-Length': '0' }).end();
        return;
      }
    }
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && etagListMatches(inm, obj.etag)) {
      res.writeHead(304, headers).end();
      return;
    }

    const range = f.mode === 'ignore-range' ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': '0' }).end();
      return;
    }
    let status = 200;
    let start = 0;
    let end = size; // exclusive
    if (range) {
      status = 206;
      [start, end] = range;
      const shift = f.mode === 'wrong-content-range' ? 1 : 0;
      headers['Content-Range'] = `bytes ${start + shift}-${end - 1 + shift}/${size}`;
    }
    let body = obj.bytes.subarray(start, end);
    if (f.mode === 'long-body') body = Buffer.concat([body, Buffer.from([0x58])]);
    headers['Content-Length'] = String(body.length);
    res.writeHead(status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    if (f.mode === 'short-body') {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    put(container, key, bytes) {
      generation++;
      const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
      // Seconds resolution, like real Last-Modified headers; the generation keeps ETags unique
      // even when the same bytes are uploaded twice.
      const lastModified = new Date(Math.floor(Date.now() / 1000) * 1000);
      objects.set(`${container}/${key}`, {
        bytes: Buffer.from(bytes),
        etag: `"${digest}-${generation}"`,
        lastModified,
      });
    },
    remove(container, key) {
      objects.delete(`${container}/${key}`);
    },
    setFault(f) {
      fault = f;
    },
    requests,
    seen,
    resetRequests() {
      requests.GET = 0;
      requests.HEAD = 0;
      requests.total = 0;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** RFC 9110 If-Match / If-None-Match list against a strong ETag (weak comparison is enough for 304). */
function etagListMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** One byte range as [start, endExclusive], undefined to ignore the header, or 'unsatisfiable'. */
function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | undefined | 'unsatisfiable' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size];
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return [start, last + 1];
}
