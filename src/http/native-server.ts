/**
 * The HTTP port served by the native door (`http.door: native`): the I/O
 * threads (native-door.ts) accept, read, parse and bound every connection,
 * and each parsed request is answered here by the same handler the
 * JavaScript door runs (server.ts: target parse, hono routes, auth, errors,
 * metrics), through node's own IncomingMessage and ServerResponse. So the
 * status line, headers and framing (Content-Length or chunked, Date,
 * Connection, Keep-Alive, HEAD, 304) are node's, byte for byte the
 * JavaScript door's; the I/O thread writes them.
 *
 * Per connection, as on the JavaScript door (connections.ts): requests are
 * handled one at a time, in order. A response's bytes go to the door as they
 * are written; once `maxBufferedBytes` of them wait on the connection, the
 * socket's write callback is held (so `res.write` returns false and the
 * sender waits for 'drain') until the door reports the queue half empty.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { CacheError } from '../errors/cache-error.js';
import type { AccessLog } from '../log/access.js';
import type { Logger } from '../log/logger.js';
import { LATENCY_BUCKETS, type Metrics, type Source } from '../metrics/metrics.js';
import { HttpConnectionMetrics } from './connection-metrics.js';
import { type CloseReason, governedElsewhere } from './connections.js';
import type { NativeFill, NativeHttpDoorOptions } from './native-binding.js';
import {
  NativeHttpDoor,
  type NativeHttpRequest,
  SEND_CLOSE,
  SEND_END,
  SEND_WANT_DRAIN,
  SEND_WANT_WRITTEN,
} from './native-door.js';
import { carryFillFailure } from './native-fill.js';
import { ClientGone } from './stream.js';

export interface NativeListenerOptions {
  readonly door: NativeHttpDoorOptions;
  /** Advertised in Keep-Alive: timeout=… as node:http does (the door closes idle connections itself). */
  readonly keepAliveTimeoutMs: number;
  /** The JavaScript door's request handler (metrics, target, routes). */
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly log: Logger;
  /** weightcache_http_connections and _rejected_connections_total count the door's connections too. */
  readonly metrics?: Metrics;
  /** Where fast-path answers are logged (when it is enabled), as JavaScript's are. */
  readonly access?: AccessLog;
  /** Makes a parked fast-path miss resident (native-fill.ts); absent: misses go to JavaScript whole. */
  readonly fill?: (f: NativeFill, signal: AbortSignal) => Promise<Source | boolean>;
}

/**
 * Fills of parked misses running at once (those whose request left still finish the chunk they
 * are fetching). Past it a parked miss is not filled: JavaScript answers it whole, as any miss.
 * Equal to the door's process-wide bound on parked requests (kMaxParkedFills in
 * addon/src/http/fastpath.h), so it only bites when fills outlive the requests that asked them.
 */
export const MAX_FILLS_IN_PROGRESS = 1024;

/** The parked misses' fills as JavaScript runs them (weightcache_http_fastpath_requests_total). */
export interface NativeFillStats {
  /** Running now (including cancelled ones finishing their current chunk). */
  inProgress: number;
  /** Cancelled before their last chunk: the request left or was answered 504. */
  cancelled: number;
  /** Not started: MAX_FILLS_IN_PROGRESS were running. */
  refused: number;
}

export interface NativeListener {
  readonly port: number;
  readonly door: NativeHttpDoor;
  fillStats(): NativeFillStats;
  connections(): number;
  close(graceMs: number): Promise<void>;
}

/** node's own flag behind `res.writableNeedDrain`; its server clears it when the socket drains. */
const kNeedDrain = Object.getOwnPropertySymbols(new ServerResponse(new IncomingMessage(null as never))).find(
  (s) => s.description === 'kNeedDrain',
);

type Res = ServerResponse & { _last?: boolean; _keepAliveTimeout?: number; _closed?: boolean };
type Req = IncomingMessage & {
  _addHeaderLines(headers: string[], n: number): void;
  _dump(): void;
  _consuming?: boolean;
};

/** One client connection as node's HTTP objects see it: writes go to the door for the current request. */
class DoorSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  _httpMessage: Res | null = null;
  /** The request whose answer is being written. */
  current = 0;
  /** Bytes handed to the door and not yet reported written. */
  private queued = 0;
  private held: ((err?: Error | null) => void) | null = null;
  /** Per request whose answer is complete: called once the door wrote its last byte (or the connection is gone). */
  private readonly written = new Map<number, () => void>();
  /** The door closed it (or told us it is gone): nothing to tell the door. */
  gone = false;
  readonly waiting: Array<{ req: Req; res: Res; id: number }> = [];
  busy = false;

  constructor(
    private readonly door: NativeHttpDoor,
    readonly conn: number,
    peer: string,
    private readonly maxBuffered: number,
  ) {
    super({ allowHalfOpen: true, decodeStrings: true });
    const colon = peer.lastIndexOf(':');
    this.remoteAddress = colon > 0 ? peer.slice(0, colon) : peer;
    this.remotePort = colon > 0 ? Number(peer.slice(colon + 1)) : 0;
    this.remoteFamily = this.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    // A write after the connection went away is not an error anyone can act on.
    this.on('error', () => {});
    this.on('drain', () => {
      const res = this._httpMessage as (Res & Record<symbol, boolean>) | null;
      if (res && kNeedDrain && res[kNeedDrain]) {
        res[kNeedDrain] = false;
        res.emit('drain');
      }
    });
  }

  setTimeout(): this {
    return this; // the door times connections out itself (http.idleTimeout, http.headersTimeout)
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.push1([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.push1(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  private push1(parts: Buffer[], cb: (err?: Error | null) => void): void {
    if (this.gone) {
      cb();
      return;
    }
    for (const p of parts) this.queued += p.length;
    const full = this.queued >= this.maxBuffered;
    this.door.send(this.current, parts, full ? SEND_WANT_DRAIN : 0);
    if (full) this.held = cb;
    else cb();
  }

  /** The door wrote `written` bytes and its queue is low again; or (`answered`) that request's answer is out. */
  drained(written: number, answered?: number): void {
    this.queued = Math.max(0, this.queued - written);
    if (answered !== undefined) {
      const then = this.written.get(answered);
      this.written.delete(answered);
      then?.();
      return;
    }
    const cb = this.held;
    this.held = null;
    cb?.();
  }

  /** Ends request `id`'s answer: `then` runs once the door wrote its last byte, at once if the connection is gone. */
  endAnswer(id: number, close: boolean, then: () => void): void {
    if (this.gone || this.destroyed) {
      process.nextTick(then);
      return;
    }
    this.written.set(id, then);
    this.door.send(id, [], SEND_END | SEND_WANT_WRITTEN | (close ? SEND_CLOSE : 0));
  }

  private runWritten(): void {
    const all = [...this.written.values()];
    this.written.clear();
    for (const f of all) f();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.gone) {
      this.gone = true;
      this.door.closeConnection(this.conn);
    }
    const held = this.held;
    this.held = null;
    held?.(err ?? new Error('connection closed'));
    this.runWritten();
    this.waiting.length = 0;
    cb(err);
  }
}

export function startNativeListener(o: NativeListenerOptions): NativeListener {
  const sockets = new Map<number, DoorSocket>();
  const maxBuffered = o.door.maxBufferedBytes ?? 2 ** 20;
  let door: NativeHttpDoor;
  const cm = o.metrics ? HttpConnectionMetrics.of(o.metrics) : undefined;

  const run = (s: DoorSocket, req: Req, res: Res, id: number) => {
    s.busy = true;
    s.current = id;
    res.on('finish', () => {
      // As node's server does when a response finishes (resOnFinish).
      if (!req._consuming && !req.readableFlowing) req._dump();
      res.detachSocket(s as never);
      // 'close' ends the answer's send-budget reservation (send-budget.ts). node's server
      // emits it once the socket took the last byte; here, once the door wrote it: until
      // then the door holds the answer's bytes, and a flood of unread answers must stay
      // within http.maxInFlightBytes on this door too.
      const closed = () => {
        if (!res._closed) {
          res.destroyed = true;
          res._closed = true;
          res.emit('close');
        }
      };
      s.endAnswer(id, res._last === true, closed);
      s.busy = false;
      const next = s.waiting.shift();
      if (next && !s.destroyed) run(s, next.req, next.res, next.id);
    });
    res.assignSocket(s as never);
    try {
      o.onRequest(req, res);
    } catch (err) {
      o.log.warn({ err }, 'http (native door): request handler threw');
      res.destroy();
    }
  };

  const onRequest = (e: NativeHttpRequest) => {
    let s = sockets.get(e.conn);
    if (!s) {
      s = new DoorSocket(door, e.conn, e.peer, maxBuffered);
      sockets.set(e.conn, s);
      const conn = e.conn;
      s.once('close', () => sockets.delete(conn));
      // connections.ts's rules reach this connection through the door: a valid token
      // (auth.ts) lets it use the reserve; the send budget's slow-client cut closes it.
      const socket = s;
      governedElsewhere(s, {
        authenticate: () => door.authenticate(conn),
        close: (reason: CloseReason) => {
          if (socket.gone || socket.destroyed) return;
          cm?.closed.inc({ reason });
          socket.destroy();
        },
      });
    }
    const req = new IncomingMessage(s as never) as Req;
    req.method = e.method;
    req.url = e.target;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = e.versionMinor;
    req.httpVersion = `1.${e.versionMinor}`;
    const flat: string[] = [];
    for (const [k, v] of e.headers) flat.push(k, v);
    req._addHeaderLines(flat, flat.length);
    if (e.body.length > 0) req.push(e.body);
    req.push(null);
    req.complete = true;
    const res = new ServerResponse(req) as Res;
    res._keepAliveTimeout = o.keepAliveTimeoutMs;
    res.shouldKeepAlive = e.keepAlive;
    const failed = failedFills.get(e.id);
    if (failed) {
      failedFills.delete(e.id);
      carryFillFailure(req, failed);
    }
    if (s.busy) s.waiting.push({ req, res, id: e.id });
    else run(s, req, res, e.id);
  };

  const fill = o.fill;
  /** Fills running, by the parked request's id. */
  const fills = new Map<number, AbortController>();
  /**
   * Fills that failed, by request id, until the request comes back to JavaScript (at once,
   * unless its client left meanwhile: the oldest go past MAX_FILLS_IN_PROGRESS).
   */
  const failedFills = new Map<number, CacheError>();
  const fillStats = { cancelled: 0, refused: 0 };
  const options = {
    ...o.door,
    ...(o.door.fast && fill ? { fast: { ...o.door.fast, fillMisses: true } } : {}),
    ...(o.metrics ? { durationBounds: LATENCY_BUCKETS } : {}),
    accessLog: o.access?.enabled ?? false,
  };
  door = NativeHttpDoor.start(options, {
    onRequest,
    onAccess(records) {
      for (const r of records) o.access?.native(r);
    },
    onFill(id, f) {
      if (!fill || fills.size >= MAX_FILLS_IN_PROGRESS) {
        if (fill) fillStats.refused++;
        door.fillDone(id, false);
        return;
      }
      const ac = new AbortController();
      fills.set(id, ac);
      fill(f, ac.signal).then(
        (got) => {
          fills.delete(id);
          door.fillDone(id, got !== false, typeof got === 'string' ? got : undefined);
        },
        (err: unknown) => {
          fills.delete(id);
          if (ac.signal.aborted) return; // nobody waits for it (its "done" would find nothing)
          if (err instanceof CacheError) {
            // The request comes back whole (same id) and is answered with this error (native-fill.ts).
            failedFills.set(id, err);
            if (failedFills.size > MAX_FILLS_IN_PROGRESS)
              failedFills.delete(failedFills.keys().next().value!);
          }
          o.log.debug({ err, name: f.name }, 'http (native door): fill of a parked miss failed');
          door.fillDone(id, false);
        },
      );
    },
    onFillCancel(id) {
      // Chunks not started are not fetched; one shared with other readers goes on for them.
      const ac = fills.get(id);
      if (!ac || ac.signal.aborted) return;
      fillStats.cancelled++;
      ac.abort(new ClientGone());
    },
    onAborted(id, _reason, conn) {
      failedFills.delete(id);
      const s = sockets.get(conn);
      if (!s) return;
      sockets.delete(conn);
      s.gone = true;
      s.destroy();
    },
    onDrain(conn, written, answered) {
      sockets.get(conn)?.drained(written, answered);
    },
    onClosed(conn) {
      const s = sockets.get(conn);
      if (!s) return;
      sockets.delete(conn);
      s.gone = true;
      s.destroy();
    },
  });

  // The door's own refusals and cuts, counted under the same metric names as the governors'.
  const removeSource = cm?.addSource({
    open: () => door.stats().connectionsOpen,
    closed: () => {
      const st = door.stats();
      return {
        max_connections: st.connectionsRejected,
        per_address: st.rejectedPerAddress,
        reserve: st.rejectedReserve,
        idle_evicted: st.idleEvicted,
        pipeline_limit: st.pipelineCuts,
        first_request_timeout: st.firstRequestTimeouts,
      };
    },
  });

  return {
    port: door.port,
    door,
    fillStats: () => ({ inProgress: fills.size, ...fillStats }),
    connections: () => door.stats().connectionsOpen,
    close: async (graceMs) => {
      // In-flight answers get up to graceMs; then the threads stop and every socket closes.
      const deadline = Date.now() + graceMs;
      while (door.stats().inFlight > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      removeSource?.();
      door.stop();
      for (const s of sockets.values()) {
        s.gone = true;
        s.destroy();
      }
      sockets.clear();
    },
  };
}
