/**
 * The native HTTP door's I/O threads (addon/src/http/door.h, docs/http-parser.md)
 * seen from JavaScript: N threads accept, read and parse requests, and post
 * each one here with an id; `respond(id, …)` answers it and the connection's
 * thread writes the answers in request order. Keep-alive, pipelining, the
 * connection limit, the per-connection bounds (requests in flight, answer
 * bytes buffered for a slow reader) and the header and idle timeouts are all
 * enforced on the I/O threads.
 *
 * With `http.door: native` the node serves its HTTP port through this door:
 * native-server.ts hands every request to the same application the
 * JavaScript door runs; the fast path (fast-path.ts) answers DRAM hits on
 * the I/O threads. The connection rules of connections.ts (per-address
 * limit, the authenticated reserve, idle eviction at the cap, the
 * unauthenticated idle time, the pipelining cut) are enforced at accept and
 * on the I/O threads, from the same http.* keys.
 */
import type { Source } from '../metrics/metrics.js';
import { binding } from '../transport/binding.js';
import type {
  NativeAccessRecord,
  NativeFill,
  NativeHttpDoorOptions,
  NativeHttpDoorStats,
  NativeHttpEvent,
} from './native-binding.js';

export type NativeHttpRequest = Extract<NativeHttpEvent, { kind: 'request' }>;

export interface NativeHttpHandlers {
  onRequest(req: NativeHttpRequest): void;
  /** The connection of a request not yet answered went away (answering it now does nothing). */
  onAborted?(id: number, reason: string, conn: number): void;
  /**
   * A connection's queue fell to half its bound after a send asked
   * (SEND_WANT_DRAIN); or, with `answered`, the last byte of that request's
   * answer is written (its final send asked, SEND_WANT_WRITTEN).
   */
  onDrain?(conn: number, written: number, answered?: number): void;
  /** A connection that posted requests is closed. */
  onClosed?(conn: number, reason: string): void;
  /** Fast-path answers written (options.accessLog), for the access log. */
  onAccess?(records: NativeAccessRecord[]): void;
  /** A parked miss (fast.fillMisses): make it resident, then call fillDone(id, ok). */
  onFill?(id: number, fill: NativeFill): void;
  /** Parked request `id` no longer waits for its fill (client gone, or answered 504). */
  onFillCancel?(id: number): void;
}

/** send() flags. */
export const SEND_END = 1;
export const SEND_CLOSE = 2;
export const SEND_WANT_DRAIN = 4;
export const SEND_WANT_WRITTEN = 8;

export interface RespondOptions {
  /** Close the connection after this answer. */
  close?: boolean;
  /** A HEAD answer: no body is sent, Content-Length is `contentLength`. */
  headOnly?: boolean;
  contentLength?: number;
}

export class NativeHttpDoor {
  private stopped = false;

  private constructor(
    private readonly id: number,
    readonly port: number,
  ) {}

  static start(options: NativeHttpDoorOptions, handlers: NativeHttpHandlers): NativeHttpDoor {
    const { id, port } = binding().httpDoorStart(options, (events) => {
      for (const e of events) {
        if (e.kind === 'request') handlers.onRequest(e);
        else if (e.kind === 'access') handlers.onAccess?.(e.records);
        else if (e.kind === 'drain') handlers.onDrain?.(e.conn, e.written, e.answered ? e.id : undefined);
        else if (e.kind === 'closed') handlers.onClosed?.(e.conn, e.reason);
        else if (e.kind === 'fill') handlers.onFill?.(e.id, e);
        else if (e.kind === 'fillCancel') handlers.onFillCancel?.(e.id);
        else handlers.onAborted?.(e.id, e.reason, e.conn);
      }
    });
    return new NativeHttpDoor(id, port);
  }

  respond(
    id: number,
    status: number,
    headers: Record<string, string> | readonly (readonly [string, string])[],
    body: Uint8Array | readonly Uint8Array[] = [],
    options: RespondOptions = {},
  ): void {
    if (this.stopped) return;
    const flat = (Array.isArray(headers) ? headers : Object.entries(headers)).flat() as string[];
    const parts = body instanceof Uint8Array ? [body] : [...body];
    binding().httpDoorRespond(this.id, id, status, flat, parts, options);
  }

  /** A piece of an answer framed by the caller (flags: SEND_END | SEND_CLOSE | SEND_WANT_DRAIN | SEND_WANT_WRITTEN). */
  send(id: number, pieces: Uint8Array[], flags: number): void {
    if (this.stopped) return;
    binding().httpDoorSend(this.id, id, pieces, flags);
  }

  /**
   * The fill of parked request `id` is done (`ok`), or failed (JavaScript then
   * answers the request whole). `source`: where the range's first chunk came
   * from, when the fill fetched it (the answer says so, as JavaScript's would).
   */
  fillDone(id: number, ok: boolean, source?: Source): void {
    if (this.stopped) return;
    binding().httpDoorFillDone(this.id, id, ok, source ?? '');
  }

  /** Closes connection `conn`; its unanswered requests are aborted. */
  closeConnection(conn: number): void {
    if (this.stopped) return;
    binding().httpDoorClose(this.id, conn);
  }

  /** Connection `conn` presented a valid token: it may use the reserve (http.reservedConnections). */
  authenticate(conn: number): void {
    if (this.stopped) return;
    binding().httpDoorAuthenticate(this.id, conn);
  }

  stats(): NativeHttpDoorStats {
    return binding().httpDoorStats(this.id);
  }

  /** Closes the listeners and every connection; requests not yet answered are dropped. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    binding().httpDoorStop(this.id);
  }
}
