/**
 * An HTTP proxy in front of a real server (Azurite, an HTTP origin, a cache
 * node) that can break responses on demand, for origin and node fault tests.
 *
 *   const proxy = await startFaultProxy({ target: 'http://127.0.0.1:10000' });
 *   proxy.url                                   // 'http://127.0.0.1:PORT': same paths as the target
 *   proxy.setFault({ mode: 'flip-byte', methods: ['GET'] })
 *   proxy.setFault({ mode: 'stall-body', times: 1 })
 *   proxy.requests                              // live counts: { GET, HEAD, total }
 *   await proxy.stop()
 *
 * Requests are forwarded unchanged (path, headers, body), so signed requests
 * such as Azure SharedKey still verify. `probability` (0..1) applies a mode to
 * that fraction of matching requests only (the rest pass through);
 * `delayMs` delays every matching request, whatever the mode. Fault modes:
 * - 'ok': pass through
 * - 'stall': never answer
 * - 'stall-body': forward the headers and the first half of the body, then go silent
 * - 'short-body': forward the headers and the first half of the body, then destroy the socket
 * - 'flip-byte': invert the first body byte (a corrupted response with valid framing)
 * - 'error-500': answer 500 without contacting the target
 * - 'error-status': answer `status` (default 503) without contacting the target
 * - 'close-immediately': destroy the client's socket as soon as the request arrives
 *
 *   proxy.setFault({ mode: 'error-status', status: 503, probability: 0.3 })  // 30% of requests
 *   proxy.setFault({ mode: 'ok', delayMs: 2000 })                            // +2 s on every request
 */
import { Agent, createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ProxyFaultMode =
  | 'ok'
  | 'stall'
  | 'stall-body'
  | 'short-body'
  | 'flip-byte'
  | 'error-500'
  | 'error-status'
  | 'close-immediately';

export interface ProxyFault {
  readonly mode: ProxyFaultMode;
  readonly delayMs?: number;
  /** Only requests with these methods are affected (default: all). */
  readonly methods?: readonly string[];
  /** Affect only the next `times` matching requests, then pass through. */
  readonly times?: number;
  /** Status of 'error-status' (default 503). */
  readonly status?: number;
  /** Fraction of matching requests the mode applies to (default 1); `delayMs` applies to all. */
  readonly probability?: number;
}

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  setFault(fault: ProxyFault): void;
  /** Live counts; `faulted`: requests a mode other than 'ok' was applied to. */
  readonly requests: { GET: number; HEAD: number; total: number; faulted: number };
  stop(): Promise<void>;
}

export async function startFaultProxy(opts: { target: string }): Promise<FaultProxy> {
  const target = new URL(opts.target);
  const agent = new Agent({ keepAlive: true });
  const requests = { GET: 0, HEAD: 0, total: 0, faulted: 0 };
  const sockets = new Set<Socket>();
  let fault: ProxyFault = { mode: 'ok' };

  const faultFor = (method: string): ProxyFault => {
    if (fault.mode === 'ok' && !fault.delayMs) return fault;
    if (fault.methods && !fault.methods.includes(method)) return { mode: 'ok' };
    if (fault.times !== undefined) {
      if (fault.times <= 0) return { mode: 'ok' };
      const current = fault;
      fault = { ...fault, times: fault.times - 1 };
      return current;
    }
    return fault;
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') requests[method]++;
    requests.total++;
    const chosen = faultFor(method);
    const hit = chosen.probability === undefined || Math.random() < chosen.probability;
    const f: ProxyFault = hit
      ? chosen
      : { mode: 'ok', ...(chosen.delayMs ? { delayMs: chosen.delayMs } : {}) };
    if (f.mode !== 'ok') requests.faulted++;
    if (f.mode === 'close-immediately') {
      req.socket.destroy();
      return;
    }
    if (f.mode === 'stall') return;
    const go = (): void => {
      if (f.mode === 'error-500' || f.mode === 'error-status') {
        req.resume();
        const status = f.mode === 'error-500' ? 500 : (f.status ?? 503);
        res.writeHead(status, { 'Content-Length': '8' }).end('injected');
        return;
      }
      const up = request(
        {
          host: target.hostname,
          port: target.port,
          method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (upRes) => relay(upRes, res, f),
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (f.delayMs) setTimeout(go, f.delayMs);
    else go();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setFault(f) {
      fault = f;
    },
    requests,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

function relay(upRes: import('node:http').IncomingMessage, res: ServerResponse, f: ProxyFault): void {
  res.writeHead(upRes.statusCode ?? 502, upRes.headers);
  const length = Number(upRes.headers['content-length'] ?? Number.NaN);
  if ((f.mode === 'short-body' || f.mode === 'stall-body') && length > 0) {
    const half = Math.floor(length / 2);
    let sent = 0;
    upRes.on('data', (chunk: Buffer) => {
      if (sent >= half) return;
      const part = chunk.subarray(0, half - sent);
      sent += part.length;
      res.write(part);
      if (sent >= half) {
        upRes.destroy();
        if (f.mode === 'short-body') res.socket?.destroy();
        // stall-body: leave the client's socket open and silent
      }
    });
    return;
  }
  if (f.mode === 'flip-byte') {
    let first = true;
    upRes.on('data', (chunk: Buffer) => {
      if (first && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = (chunk[0] as number) ^ 0xff;
        first = false;
      }
      res.write(chunk);
    });
    upRes.on('end', () => res.end());
    return;
  }
  upRes.pipe(res);
}
