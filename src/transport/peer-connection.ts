/**
 * One client connection to a peer: handshake, request ids, the in-flight
 * bound, timeouts, and failing everything pending — fast, with the reason —
 * when the connection dies. The client (client.ts) pools a few of these.
 */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import {
  AUTH_REQUIRED,
  clientProof,
  EXT_CLIENT_NONCE,
  EXT_SERVER_NONCE,
  EXT_SERVER_PROOF,
  extension,
  NONCE_BYTES,
  nonce,
  proofMatches,
  serverProof,
} from './auth.js';
import type { TransportLogger } from './logger.js';
import { decodeError, decodeHello, encodeError, encodeHello } from './messages.js';
import type { ConnectionSink, FrameEvent, NativeTransport } from './native.js';
import { FLAG_RESPONSE, FrameType, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from './protocol.js';

export interface PeerConnectionOptions {
  host: string;
  port: number;
  timeoutMs: number;
  maxInFlight: number;
  maxFrameBytes: number;
  nodeId: string;
  logger: TransportLogger;
  /** Cluster secret (src/transport/auth.ts); null: this side offers and accepts no auth. */
  secret: Buffer | null;
  /**
   * Requests the server sends on this connection (a home's LEASE_REVOKE); the
   * resolved meta is the response, a rejection an ERROR frame. Absent: answered UNSUPPORTED.
   */
  onRequest?: ((type: number, meta: Buffer) => Promise<Buffer>) | undefined;
}

interface Pending {
  type: number;
  meta: Buffer;
  resolve(ev: FrameEvent): void;
  reject(err: CacheError): void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  sent: boolean;
}

export class PeerConnection implements ConnectionSink {
  private state: 'connecting' | 'hello' | 'auth' | 'ready' | 'closed' = 'connecting';
  private readonly clientNonce = nonce();
  /** 0 until the socket exists (a host name is resolved first). */
  private conn = 0;
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for an in-flight slot, in order. */
  private readonly queue: number[] = [];
  /** Ids sent and not yet answered, including timed-out ones: they still hold a slot at the server. */
  private readonly unanswered = new Set<number>();
  private nextId = 1;
  private maxInFlight: number;
  private lastFrameAt = Date.now();
  private readonly connectTimer: NodeJS.Timeout;
  private closeReason = '';
  private closeCode: ErrorCode = 'ORIGIN_UNAVAILABLE';

  constructor(
    private readonly native: NativeTransport,
    private readonly o: PeerConnectionOptions,
  ) {
    this.maxInFlight = o.maxInFlight;
    if (isIP(o.host)) {
      this.open(o.host);
    } else {
      lookup(o.host).then(
        ({ address }) => {
          if (this.state !== 'closed') this.open(address);
        },
        (err: Error) => this.close(`cannot resolve ${o.host}: ${err.message}`),
      );
    }
    this.connectTimer = setTimeout(
      () => this.close(`connect and handshake took longer than ${o.timeoutMs} ms`),
      o.timeoutMs,
    );
    this.connectTimer.unref();
  }

  get peer(): string {
    return `${this.o.host}:${this.o.port}`;
  }

  get alive(): boolean {
    return this.state !== 'closed';
  }

  get load(): number {
    return this.pending.size;
  }

  /** `timeoutMs`: this request's own limit (INVALIDATE waits out leases), instead of the connection's. */
  request(type: number, meta: Buffer, signal?: AbortSignal, timeoutMs?: number): Promise<FrameEvent> {
    if (this.state === 'closed') {
      return Promise.reject(this.lost());
    }
    if (signal?.aborted) return Promise.reject(CacheError.from(signal.reason, 'SHUTTING_DOWN'));
    const id = this.allocId();
    return new Promise<FrameEvent>((resolve, reject) => {
      const p: Pending = {
        type,
        meta,
        resolve,
        reject,
        signal,
        sent: false,
        onAbort: undefined,
        timer: setTimeout(
          () => this.timeout(id, timeoutMs ?? this.o.timeoutMs),
          timeoutMs ?? this.o.timeoutMs,
        ),
      };
      if (signal) {
        p.onAbort = () => this.settle(id, CacheError.from(signal.reason, 'SHUTTING_DOWN'), true);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      if (this.pending.size === 0) this.native.ref();
      this.pending.set(id, p);
      this.queue.push(id);
      this.pump();
    });
  }

  close(reason: string, code: ErrorCode = 'ORIGIN_UNAVAILABLE'): void {
    if (this.state === 'closed') return;
    this.closeCode = code;
    if (this.conn) this.native.b.transportClose(this.conn, reason, false);
    this.onClosed(reason);
  }

  onConnected(): void {
    this.state = 'hello';
    const hello = encodeHello({
      minVersion: MIN_PROTOCOL_VERSION,
      maxVersion: PROTOCOL_VERSION,
      features: 0,
      maxFrameBytes: this.o.maxFrameBytes,
      maxInFlight: this.o.maxInFlight,
      nodeId: this.o.nodeId,
      extensions: this.o.secret ? [{ tag: EXT_CLIENT_NONCE, value: this.clientNonce }] : [],
    });
    this.native.b.transportSend(this.conn, FrameType.HELLO, 0, 0, hello, null, null, 0, 0, 0);
  }

  onFrame(ev: FrameEvent): void {
    this.lastFrameAt = Date.now();
    if (ev.type === FrameType.ERROR && ev.requestId === 0) {
      const err = safe(() => decodeError(ev.meta, this.peer));
      this.close(
        `peer ended the connection: ${err ? `${err.code}: ${err.message}` : 'malformed ERROR'}`,
        err?.code === 'UNAUTHORIZED' ? 'UNAUTHORIZED' : undefined,
      );
      return;
    }
    if (this.state === 'hello') {
      this.onHelloReply(ev);
      return;
    }
    if (this.state === 'auth') {
      if (ev.type !== FrameType.AUTH) {
        this.close(`protocol error: expected the AUTH answer, got type ${ev.type}`, 'UNAUTHORIZED');
        return;
      }
      this.ready();
      return;
    }
    if (!(ev.flags & FLAG_RESPONSE)) {
      this.onServerRequest(ev);
      return;
    }
    this.unanswered.delete(ev.requestId);
    const p = this.pending.get(ev.requestId);
    if (p) {
      if (ev.type === FrameType.ERROR) {
        const err = safe(() => decodeError(ev.meta, this.peer));
        this.settle(
          ev.requestId,
          err ?? new CacheError('INTERNAL', `peer ${this.peer}: malformed ERROR frame`),
        );
      } else if (ev.type !== p.type) {
        this.close(`protocol error: response of type ${ev.type} to a request of type ${p.type}`);
      } else {
        this.settle(ev.requestId, ev);
      }
    }
    this.pump();
  }

  onClosed(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = reason;
    clearTimeout(this.connectTimer);
    for (const id of [...this.pending.keys()]) this.settle(id, this.lost());
    this.queue.length = 0;
    this.o.logger.info({ peer: this.peer, reason }, 'transport client connection closed');
  }

  /** A request from the server (PING, a home's LEASE_REVOKE): every one gets exactly one response. */
  private onServerRequest(ev: FrameEvent): void {
    const conn = this.conn;
    const answer = (type: number, meta: Buffer) => {
      if (this.state !== 'closed' && this.conn === conn) {
        this.native.b.transportSend(conn, type, FLAG_RESPONSE, ev.requestId, meta, null, null, 0, 0, 0);
      }
    };
    if (ev.type === FrameType.PING) {
      answer(FrameType.PING, ev.meta);
      return;
    }
    const handler = this.o.onRequest;
    const work = handler
      ? handler(ev.type, ev.meta)
      : Promise.reject(new CacheError('UNSUPPORTED', `frame type ${ev.type} is not served by this client`));
    work.then(
      (meta) => answer(ev.type, meta),
      (err: unknown) => {
        const e = CacheError.from(err);
        answer(FrameType.ERROR, encodeError(e.code, e.message));
        if (!(err instanceof CacheError)) {
          this.o.logger.warn({ peer: this.peer, err: (err as Error).message }, 'server request failed');
        }
      },
    );
  }

  private open(address: string): void {
    this.conn = this.native.b.transportConnect(
      address,
      this.o.port,
      this.o.maxFrameBytes,
      this.o.maxInFlight,
    );
    this.native.attach(this.conn, this);
  }

  private onHelloReply(ev: FrameEvent): void {
    const hello = ev.type === FrameType.HELLO ? safe(() => decodeHello(ev.meta)) : undefined;
    if (!hello) {
      this.close(`protocol error: expected a HELLO reply, got type ${ev.type}`);
      return;
    }
    if (hello.maxVersion < MIN_PROTOCOL_VERSION || hello.maxVersion > PROTOCOL_VERSION) {
      this.close(`peer chose unsupported protocol version ${hello.maxVersion}`);
      return;
    }
    this.maxInFlight = Math.max(1, Math.min(this.maxInFlight, hello.maxInFlight));
    const required = (hello.features & AUTH_REQUIRED) !== 0;
    const secret = this.o.secret;
    if (required && !secret) {
      this.close(
        'peer requires a cluster secret and none is configured (auth.clusterSecretFile)',
        'UNAUTHORIZED',
      );
      return;
    }
    if (!secret) {
      this.ready();
      return;
    }
    // Mutual: a peer that does not prove the secret is not a member, whatever it serves.
    const serverNonce = extension(hello.extensions, EXT_SERVER_NONCE);
    if (!required || serverNonce?.length !== NONCE_BYTES) {
      this.close(
        'peer does not prove the cluster secret (it runs without auth.clusterSecretFile)',
        'UNAUTHORIZED',
      );
      return;
    }
    const proof = extension(hello.extensions, EXT_SERVER_PROOF);
    if (!proofMatches(proof, serverProof(secret, this.clientNonce, serverNonce))) {
      this.close('cluster secret mismatch: the peer proved a different secret', 'UNAUTHORIZED');
      return;
    }
    this.state = 'auth';
    const answer = clientProof(secret, serverNonce, this.clientNonce);
    this.native.b.transportSend(this.conn, FrameType.AUTH, 0, 0, answer, null, null, 0, 0, 0);
  }

  private ready(): void {
    this.state = 'ready';
    clearTimeout(this.connectTimer);
    this.pump();
  }

  private pump(): void {
    if (this.state !== 'ready') return;
    while (this.queue.length > 0 && this.unanswered.size < this.maxInFlight) {
      const id = this.queue.shift()!;
      const p = this.pending.get(id);
      if (!p) continue;
      p.sent = true;
      this.unanswered.add(id);
      this.native.b.transportSend(this.conn, p.type, 0, id, p.meta, null, null, 0, 0, 0);
    }
  }

  private timeout(id: number, ms: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    const silentMs = Date.now() - this.lastFrameAt;
    this.settle(id, new CacheError('ORIGIN_TIMEOUT', `peer ${this.peer}: no response within ${ms} ms`), true);
    // A peer that has said nothing for a whole timeout is presumed dead: drop the connection so
    // the next request reconnects instead of queueing behind it.
    if (silentMs >= this.o.timeoutMs) this.close(`peer silent for ${silentMs} ms`);
  }

  /** Settles a pending request once; `cancel` tells the server to stop work it already started. */
  private settle(id: number, result: FrameEvent | CacheError, cancel = false): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    if (this.pending.size === 0) this.native.unref();
    if (cancel && p.sent && this.state === 'ready') {
      this.native.b.transportSend(this.conn, FrameType.CANCEL, 0, id, null, null, null, 0, 0, 0);
    }
    if (result instanceof CacheError) p.reject(result);
    else p.resolve(result);
  }

  private lost(): CacheError {
    return new CacheError(this.closeCode, `peer ${this.peer}: connection lost: ${this.closeReason}`);
  }

  private allocId(): number {
    // Ids wrap at 2^32 - 1, skipping 0 (connection-level) and any id still unanswered.
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId) || this.unanswered.has(this.nextId));
    return this.nextId;
  }
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
