/**
 * The transport as a plain RPC layer. Below it, frames (the addon: header,
 * bounded meta, optional payload, request or response by one flag). Here,
 * the two halves every connection has, whichever side opened it:
 *
 *  - `Messages`: request types registered by the parts that own them
 *    (`register(type, handler)`): chunk reads by the transport's server, the
 *    lease and invalidate messages by src/coherence/. A request of a type
 *    nobody registered is answered UNSUPPORTED.
 *  - `RequestMatcher`: the one request/response matcher: ids, timeouts,
 *    aborts, the in-flight window, and failing everything pending when the
 *    connection dies.
 *
 * `serveRequest` runs one inbound request to exactly one response.
 */
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import { MetaError } from './codec.js';
import { decodeError, encodeError } from './messages.js';
import type { FrameEvent } from './native.js';
import { FrameType } from './protocol.js';

/** A response as the requester sees it: meta, and a payload whose CRC32C the addon checked. */
export type Response = Pick<FrameEvent, 'type' | 'meta' | 'payload' | 'payloadCrc' | 'crcOk'>;

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** This request's own limit instead of the connection's (INVALIDATE waits out leases). */
  timeoutMs?: number | undefined;
}

/** Whatever can carry a request to one peer and bring its one response back. */
export interface RequestChannel {
  /** Rejects with the peer's CacheError for an ERROR answer, or on timeout, abort or close. */
  request(type: number, meta: Buffer, opts?: CallOptions): Promise<Response>;
}

/** What to send for a chunk read (see TransportHandler in server.ts). */
export type ChunkPayload =
  | { kind: 'buffer'; data: Buffer; crc32c?: number }
  | { kind: 'file'; path: string; offset: number; length: number; crc32c?: number };

/** A handler's answer: the response meta, or (chunk reads) a payload with empty meta. */
export type Reply = Buffer | { payload: ChunkPayload };

/** Who sent a request, and the way back to it on the same connection. */
export interface Caller {
  /** The peer's HELLO nodeId (a lease holder's identity at its home); '' on the connecting side. */
  readonly nodeId: string;
  /** "host:port", for messages. */
  readonly peer: string;
  /** The feature bits of the peer's HELLO (protocol.ts): which optional fields its answers may carry. */
  readonly features: number;
  /** Requests back to the caller on its own connection (a home's LEASE_REVOKE). */
  readonly channel: RequestChannel & { readonly isOpen: boolean };
}

export interface ServeContext {
  readonly signal: AbortSignal;
  readonly from: Caller;
  /**
   * READ_CHUNK only: the I/O thread read this chunk's NVMe file for the request and found it
   * damaged, gone or short (docs/transport.md): the local copy must not be sent as it is.
   */
  readonly nvmeFailed?: boolean;
}

export interface MessageHandler<Q = unknown> {
  /** Parses the request meta; a MetaError here is the peer's protocol error (the connection closes). */
  decode(meta: Buffer): Q;
  /** Throw a CacheError to answer with an ERROR frame carrying its code. */
  serve(q: Q, ctx: ServeContext): Promise<Reply>;
}

/** Types the connection itself uses: never registrable. */
const CONNECTION_TYPES = new Set<number>([
  FrameType.HELLO,
  FrameType.ERROR,
  FrameType.AUTH,
  FrameType.PING,
  FrameType.CANCEL,
]);

const CONNECTION_TYPE_NAMES = new Map<number, string>([
  [FrameType.HELLO, 'HELLO'],
  [FrameType.ERROR, 'ERROR'],
  [FrameType.AUTH, 'AUTH'],
  [FrameType.PING, 'PING'],
  [FrameType.CANCEL, 'CANCEL'],
]);

export class Messages {
  private readonly byType = new Map<number, { name: string; handler: MessageHandler<unknown> }>();

  /** Serves requests of `type` with `handler`; `name` is for logs and errors ("LEASE_GRANT"). */
  register<Q>(type: number, name: string, handler: MessageHandler<Q>): void {
    if (!Number.isInteger(type) || type < 1 || type > 255 || CONNECTION_TYPES.has(type)) {
      throw new CacheError(
        'INTERNAL',
        `frame type ${type} cannot be registered (1..255, not a connection type)`,
      );
    }
    const had = this.byType.get(type);
    if (had) throw new CacheError('INTERNAL', `frame type ${type} is already registered as ${had.name}`);
    this.byType.set(type, { name, handler: handler as MessageHandler<unknown> });
  }

  get(type: number): { name: string; handler: MessageHandler<unknown> } | undefined {
    return this.byType.get(type);
  }

  name(type: number): string {
    return this.byType.get(type)?.name ?? CONNECTION_TYPE_NAMES.get(type) ?? `type ${type}`;
  }
}

export interface MatcherHooks {
  /** "host:port", for errors. */
  readonly peer: string;
  /** Writes a request frame (flags 0) with this id. */
  write(type: number, id: number, meta: Buffer): void;
  /** Tells the peer to stop work on a request that was sent (timed out, aborted); absent: nothing sent. */
  cancel?(id: number): void;
  /** Requests sent and unanswered at once (the peer's HELLO limit); the rest wait in order. Default: no limit. */
  maxInFlight?(): number;
  /** After a request timed out (the peer-silence check). */
  timedOut?(): void;
  /** The peer's HELLO feature bits (for a request whose meta depends on them); default 0. */
  features?(): number;
  /** First request pending / last one settled (keeps the process alive while a request waits). */
  busy?(): void;
  idle?(): void;
}

/**
 * A request's meta, or a function building it from the peer's HELLO feature
 * bits when the request is sent (after the handshake): how a request gains a
 * field only towards a peer that announced it (docs/wire-protocol.md, "Feature bits").
 */
export type RequestMeta = Buffer | ((peerFeatures: number) => Buffer);

interface Pending {
  type: number;
  meta: RequestMeta;
  resolve(r: Response): void;
  reject(err: CacheError): void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  sent: boolean;
}

/**
 * Requests this side sends on one connection. Ids are this side's own; each
 * request ends exactly once: answered, an ERROR answer, a timeout, an abort,
 * or the connection closing.
 */
export class RequestMatcher {
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for an in-flight slot, in order. */
  private readonly queue: number[] = [];
  /** Ids sent and not yet answered, including timed-out ones: they still hold a slot at the peer. */
  private readonly unanswered = new Set<number>();
  private nextId = 0;
  private open = false;
  private failure: CacheError | undefined;

  constructor(private readonly h: MatcherHooks) {}

  get load(): number {
    return this.pending.size;
  }

  /** Requests may go out from now on (the handshake completed). */
  ready(): void {
    this.open = true;
    this.pump();
  }

  request(type: number, meta: RequestMeta, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
    if (this.failure) return Promise.reject(this.failure);
    if (signal?.aborted) return Promise.reject(CacheError.from(signal.reason, 'SHUTTING_DOWN'));
    const id = this.allocId();
    return new Promise<Response>((resolve, reject) => {
      const p: Pending = {
        type,
        meta,
        resolve,
        reject,
        signal,
        sent: false,
        onAbort: undefined,
        timer: setTimeout(() => this.timeout(id, timeoutMs), timeoutMs),
      };
      // What keeps the process alive while a request waits is the busy() hook (the connecting
      // side refs the addon); an accepted connection's request back must not hold a shutdown.
      p.timer.unref();
      if (signal) {
        p.onAbort = () => this.settle(id, CacheError.from(signal.reason, 'SHUTTING_DOWN'), true);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      if (this.pending.size === 0) this.h.busy?.();
      this.pending.set(id, p);
      this.queue.push(id);
      this.pump();
    });
  }

  /**
   * A response frame (the addon has checked its id is one we sent). False when it does not
   * match its request's type: a protocol error the caller closes the connection for.
   */
  answer(ev: FrameEvent): boolean {
    this.unanswered.delete(ev.requestId);
    const p = this.pending.get(ev.requestId);
    let ok = true;
    if (p) {
      if (ev.type === FrameType.ERROR) {
        let err: CacheError;
        try {
          err = decodeError(ev.meta, this.h.peer);
        } catch {
          err = new CacheError('INTERNAL', `peer ${this.h.peer}: malformed ERROR frame`);
        }
        this.settle(ev.requestId, err);
      } else if (ev.type !== p.type) {
        ok = false;
      } else {
        this.settle(ev.requestId, ev);
      }
    }
    this.pump();
    return ok;
  }

  /** The connection closed: every request still waiting fails now with `err`, and later ones at once. */
  fail(err: CacheError): void {
    this.failure ??= err;
    this.open = false;
    for (const id of [...this.pending.keys()]) this.settle(id, this.failure);
    this.queue.length = 0;
  }

  private pump(): void {
    if (!this.open) return;
    const max = this.h.maxInFlight?.() ?? Number.POSITIVE_INFINITY;
    while (this.queue.length > 0 && this.unanswered.size < max) {
      const id = this.queue.shift()!;
      const p = this.pending.get(id);
      if (!p) continue;
      let meta: Buffer;
      try {
        meta = typeof p.meta === 'function' ? p.meta(this.h.features?.() ?? 0) : p.meta;
      } catch (err) {
        this.settle(id, CacheError.from(err, 'INTERNAL'));
        continue;
      }
      p.sent = true;
      this.unanswered.add(id);
      this.h.write(p.type, id, meta);
    }
  }

  private timeout(id: number, ms: number): void {
    if (!this.pending.has(id)) return;
    this.settle(
      id,
      new CacheError('PEER_UNAVAILABLE', `peer ${this.h.peer}: no response within ${ms} ms`),
      true,
    );
    this.h.timedOut?.();
  }

  /** Settles a pending request once; `cancel` tells the peer to stop work it already started. */
  private settle(id: number, result: Response | CacheError, cancel = false): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    if (this.pending.size === 0) this.h.idle?.();
    if (cancel && p.sent && this.open) this.h.cancel?.(id);
    if (result instanceof CacheError) p.reject(result);
    else p.resolve(result);
  }

  private allocId(): number {
    // Ids wrap at 2^32 - 1, skipping 0 (connection-level) and any id still unanswered.
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId) || this.unanswered.has(this.nextId));
    return this.nextId;
  }
}

export interface InboundHooks {
  readonly messages: Messages;
  readonly from: Caller;
  /** Sends a response frame (FLAG_RESPONSE) for `id`; meta, or a payload. */
  respond(type: number, id: number, reply: Reply): void;
  /** The peer broke the protocol: close the connection with this reason. */
  protocolError(reason: string): void;
  /** Our own encoder refused an answer, or a handler failed with something not a CacheError (logged). */
  warn(reason: string, what: string): void;
}

/**
 * Requests the peer sent on one connection, each run to exactly one
 * response; a CANCEL aborts the handler's signal. Used by both ends.
 */
export class Inbound {
  private readonly inflight = new Map<number, AbortController>();

  constructor(private readonly h: InboundHooks) {}

  /**
   * One request frame. The request meta is decoded first, and a MetaError there is the peer's:
   * the connection is closed. Once it decoded, a MetaError is ours (an encoder refusing our own
   * answer, e.g. an etag over 1024 bytes from an HTTP origin): that one request is answered
   * INTERNAL, and the connection with every other request on it carries on.
   */
  request(ev: FrameEvent): void {
    if (ev.type === FrameType.PING) {
      this.h.respond(FrameType.PING, ev.requestId, ev.meta);
      return;
    }
    if (ev.type === FrameType.CANCEL) {
      this.inflight
        .get(ev.requestId)
        ?.abort(new CacheError('SHUTTING_DOWN', 'request cancelled by the peer'));
      return;
    }
    const entry = this.h.messages.get(ev.type);
    if (!entry) {
      this.error(ev.requestId, new CacheError('UNSUPPORTED', `frame type ${ev.type} is not served here`));
      return;
    }
    if (this.inflight.has(ev.requestId)) {
      this.h.protocolError(`request id ${ev.requestId} reused while in flight`);
      return;
    }
    let q: unknown;
    try {
      q = entry.handler.decode(ev.meta);
    } catch (err) {
      if (err instanceof MetaError) this.h.protocolError(`bad request meta: ${err.message}`);
      else this.error(ev.requestId, CacheError.from(err));
      return;
    }
    const ac = new AbortController();
    this.inflight.set(ev.requestId, ac);
    entry.handler
      .serve(q, { signal: ac.signal, from: this.h.from, nvmeFailed: ev.nvmeFailed === true })
      .then(
        (reply) => this.h.respond(ev.type, ev.requestId, reply),
        (err: unknown) => {
          if (err instanceof MetaError) {
            const reason = `could not encode the ${entry.name} answer: ${err.message}`;
            this.h.warn(reason, 'transport answer refused by its encoder');
            this.error(ev.requestId, new CacheError('INTERNAL', reason, { cause: err }));
          } else {
            // A CacheError is an answer; anything else is a bug in the handler: say so where it ran.
            if (!(err instanceof CacheError)) {
              this.h.warn(`${entry.name}: ${(err as Error)?.message}`, 'transport request handler failed');
            }
            this.error(ev.requestId, CacheError.from(err));
          }
        },
      )
      .finally(() => this.inflight.delete(ev.requestId));
  }

  /** The connection closed or is shutting down: every handler's signal aborts. */
  abortAll(reason: string): void {
    for (const ac of this.inflight.values()) ac.abort(new CacheError('SHUTTING_DOWN', reason));
    this.inflight.clear();
  }

  private error(id: number, err: CacheError): void {
    this.h.respond(FrameType.ERROR, id, encodeError(err.code as ErrorCode, err.message));
  }
}
