/**
 * One transport connection on the serving side: the HELLO handshake (with
 * the cluster-secret challenge when one is set), then requests answered
 * through the server's handler, each with exactly one response. Split from
 * server.ts, which owns the listener and the connection table.
 */
import { CacheError } from '../errors/cache-error.js';
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
import { MetaError } from './codec.js';
import { decodeInvalidate, encodeInvalidateAnswer } from './invalidate-messages.js';
import {
  decodeLeaseAck,
  decodeLeaseGrantRequest,
  decodeLeaseRenewRequest,
  encodeLeaseAckResponse,
  encodeLeaseGrantResponse,
} from './lease-messages.js';
import {
  decodeHello,
  decodeObjectName,
  decodeReadChunk,
  encodeError,
  encodeHello,
  encodeObjectInfo,
  type ReadChunkRequest,
} from './messages.js';
import type { ConnectionSink, FrameEvent, NativeTransport } from './native.js';
import { OutgoingRequests } from './outgoing.js';
import { FLAG_RESPONSE, FrameType, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from './protocol.js';
import { checkRange } from './range.js';
import type { LeaseService, TransportServer } from './server.js';

const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));

export class ServerConnection implements ConnectionSink {
  private helloDone = false;
  /** With a cluster secret: the proof this peer's AUTH frame must carry; undefined once authenticated. */
  private expectedProof: Buffer | undefined;
  private closed = false;
  private readonly inflight = new Map<number, AbortController>();
  private readonly helloTimer: NodeJS.Timeout;
  /** The peer's HELLO nodeId: a lease holder's identity at its home. */
  private peerNodeId = '';
  /** Requests this side sends to the peer (LEASE_REVOKE). */
  private readonly outgoing: OutgoingRequests;

  constructor(
    private readonly server: TransportServer,
    private readonly native: NativeTransport,
    private readonly conn: number,
    private readonly peer: string,
  ) {
    // A connection that never completes the handshake would hold a slot of maxConnections forever.
    const ms = server.opts.helloTimeoutMs;
    this.helloTimer = setTimeout(() => this.protocolError(`no HELLO within ${ms} ms`), ms);
    this.helloTimer.unref();
    this.outgoing = new OutgoingRequests(peer, (type, id, meta) =>
      native.b.transportSend(conn, type, 0, id, meta, null, null, 0, 0, 0),
    );
  }

  onConnected(): void {}

  get nodeId(): string {
    return this.peerNodeId;
  }

  get isOpen(): boolean {
    return !this.closed && this.helloDone && !this.expectedProof;
  }

  /**
   * Sends a request to the peer on this connection (a home's LEASE_REVOKE
   * travels on the holder's own connection: sidecars listen on loopback only).
   * Resolves with the response frame; rejects on an ERROR answer, timeout or close.
   */
  request(type: number, meta: Buffer, timeoutMs: number): Promise<FrameEvent> {
    if (!this.isOpen) {
      return Promise.reject(new CacheError('SHUTTING_DOWN', `connection to ${this.peer} is closed`));
    }
    return this.outgoing.send(type, meta, timeoutMs);
  }

  onFrame(ev: FrameEvent): void {
    if (!this.helloDone) {
      this.onHello(ev);
      return;
    }
    if (this.expectedProof) {
      this.onAuth(ev);
      return;
    }
    if (ev.flags & FLAG_RESPONSE) {
      this.outgoing.answer(ev);
      return;
    }
    switch (ev.type) {
      case FrameType.PING:
        this.send(FrameType.PING, ev.requestId, ev.meta);
        return;
      case FrameType.CANCEL:
        this.inflight
          .get(ev.requestId)
          ?.abort(new CacheError('SHUTTING_DOWN', 'request cancelled by the client'));
        return;
      case FrameType.READ_CHUNK:
        this.serve(ev, decodeReadChunk, (q, signal) => this.read(ev, q, signal));
        return;
      case FrameType.STAT:
        this.serve(ev, decodeObjectName, async (n, signal) => {
          const info = await this.server.opts.handler.stat(n, signal);
          this.send(FrameType.STAT, ev.requestId, encodeObjectInfo(info));
        });
        return;
      case FrameType.LEASE_GRANT:
      case FrameType.LEASE_RENEW:
      case FrameType.LEASE_ACK:
      case FrameType.INVALIDATE: {
        const leases = this.server.opts.handler.leases;
        if (!leases) break; // answered UNSUPPORTED below
        this.serveLease(leases, ev);
        return;
      }
      case FrameType.HELLO:
        this.protocolError('HELLO after the handshake');
        return;
      case FrameType.ERROR:
        // A client only sends connection-level errors, and closes after them.
        this.server.opts.logger.warn({ peer: this.peer }, 'transport client reported an error; closing');
        this.native.b.transportClose(this.conn, 'client reported an error', false);
        return;
    }
    // Reserved types (auth, RDMA; leases on a server without them) are requests too: answer, so the slot is freed.
    this.sendError(ev.requestId, new CacheError('UNSUPPORTED', `frame type ${ev.type} is not served here`));
  }

  onClosed(reason: string): void {
    this.closed = true;
    clearTimeout(this.helloTimer);
    this.outgoing.closed(reason);
    for (const ac of this.inflight.values())
      ac.abort(new CacheError('SHUTTING_DOWN', `connection closed: ${reason}`));
    this.inflight.clear();
    const log = this.server.opts.logger;
    if (reason.startsWith('protocol error'))
      log.warn({ peer: this.peer, reason }, 'transport connection closed');
    else log.info({ peer: this.peer, reason }, 'transport connection closed');
    this.server.forget(this.conn);
  }

  shutdown(): void {
    for (const ac of this.inflight.values())
      ac.abort(new CacheError('SHUTTING_DOWN', 'server shutting down'));
    this.native.b.transportSend(
      this.conn,
      FrameType.ERROR,
      FLAG_RESPONSE,
      0,
      encodeError('SHUTTING_DOWN', 'server shutting down'),
      null,
      null,
      0,
      0,
      0,
    );
    this.native.b.transportClose(this.conn, 'server shutting down', true);
    // A peer that does not read cannot hold the shutdown hostage.
    setTimeout(() => {
      if (!this.closed)
        this.native.b.transportClose(this.conn, 'server shutting down (grace expired)', false);
    }, this.server.opts.closeGraceMs).unref();
  }

  private onHello(ev: FrameEvent): void {
    if (ev.type !== FrameType.HELLO) {
      this.protocolError(`expected HELLO as the first frame, got type ${ev.type}`);
      return;
    }
    let hello: ReturnType<typeof decodeHello>;
    try {
      hello = decodeHello(ev.meta);
    } catch (err) {
      this.protocolError(`bad HELLO: ${(err as Error).message}`);
      return;
    }
    const version = Math.min(hello.maxVersion, PROTOCOL_VERSION);
    if (version < Math.max(hello.minVersion, MIN_PROTOCOL_VERSION)) {
      const msg =
        `unsupported protocol version ${hello.minVersion}..${hello.maxVersion}; ` +
        `this server speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`;
      this.server.opts.logger.warn({ peer: this.peer, reason: msg }, 'transport handshake refused');
      this.sendError(0, new CacheError('BAD_REQUEST', msg));
      this.native.b.transportClose(this.conn, msg, true);
      return;
    }
    this.helloDone = true;
    this.peerNodeId = hello.nodeId;
    const o = this.server.opts;
    const extensions: { tag: number; value: Buffer }[] = [];
    let features = 0;
    if (o.secret) {
      const clientNonce = extension(hello.extensions, EXT_CLIENT_NONCE);
      if (clientNonce?.length !== NONCE_BYTES) {
        this.refuse('this node requires a cluster secret (auth.clusterSecretFile); the peer offered none');
        return;
      }
      const serverNonce = nonce();
      features |= AUTH_REQUIRED;
      extensions.push(
        { tag: EXT_SERVER_NONCE, value: serverNonce },
        { tag: EXT_SERVER_PROOF, value: serverProof(o.secret, clientNonce, serverNonce) },
      );
      this.expectedProof = clientProof(o.secret, serverNonce, clientNonce);
    } else {
      clearTimeout(this.helloTimer);
    }
    const reply = encodeHello({
      minVersion: version,
      maxVersion: version,
      features,
      maxFrameBytes: o.maxFrameBytes,
      maxInFlight: o.maxInFlightPerConnection,
      nodeId: o.nodeId,
      extensions,
    });
    this.send(FrameType.HELLO, ev.requestId, reply);
  }

  /** The one frame allowed between HELLO and requests when a secret is set. The HELLO timer still runs. */
  private onAuth(ev: FrameEvent): void {
    if (ev.type !== FrameType.AUTH || !proofMatches(ev.meta, this.expectedProof!)) {
      this.refuse(
        ev.type === FrameType.AUTH ? 'cluster secret mismatch' : `request before AUTH (type ${ev.type})`,
      );
      return;
    }
    this.expectedProof = undefined;
    clearTimeout(this.helloTimer);
    this.send(FrameType.AUTH, ev.requestId, Buffer.alloc(0));
  }

  private refuse(reason: string): void {
    this.server.opts.logger.warn({ peer: this.peer, reason }, 'transport peer refused');
    this.sendError(0, new CacheError('UNAUTHORIZED', reason));
    this.native.b.transportClose(this.conn, `unauthorized: ${reason}`, true);
  }

  private async read(ev: FrameEvent, q: ReadChunkRequest, signal: AbortSignal): Promise<void> {
    checkRange(q.name, q.offset, q.length);
    if (q.length > this.server.opts.maxFrameBytes) {
      throw new CacheError(
        'TOO_LARGE',
        `read of ${q.length} bytes exceeds maxFrameBytes ${this.server.opts.maxFrameBytes}`,
      );
    }
    const p = await this.server.opts.handler.readChunk(q.name, q.offset, q.length, signal, q.localOnly);
    if (this.closed) return;
    const got = p.kind === 'buffer' ? p.data.length : p.length;
    if (got !== q.length) {
      throw new CacheError('INTERNAL', `handler returned ${got} bytes for a read of ${q.length}`);
    }
    const crc = p.crc32c ?? -1;
    if (p.kind === 'buffer') {
      this.native.b.transportSend(
        this.conn,
        FrameType.READ_CHUNK,
        FLAG_RESPONSE,
        ev.requestId,
        null,
        p.data,
        null,
        0,
        0,
        crc,
      );
    } else {
      this.native.b.transportSend(
        this.conn,
        FrameType.READ_CHUNK,
        FLAG_RESPONSE,
        ev.requestId,
        null,
        null,
        p.path,
        p.offset,
        p.length,
        crc,
      );
    }
  }

  private serveLease(leases: LeaseService, ev: FrameEvent): void {
    const { requestId, type } = ev;
    switch (type) {
      case FrameType.LEASE_GRANT:
        this.serve(ev, decodeLeaseGrantRequest, async (q, signal) => {
          const a = await leases.lease(q, this.peerNodeId, undefined, signal, this);
          this.send(type, requestId, encodeLeaseGrantResponse(a));
        });
        return;
      case FrameType.LEASE_RENEW:
        this.serve(ev, decodeLeaseRenewRequest, async (q, signal) => {
          const a = await leases.lease(q, this.peerNodeId, q.held, signal, this);
          this.send(type, requestId, encodeLeaseGrantResponse(a));
        });
        return;
      case FrameType.LEASE_ACK:
        this.serve(ev, decodeLeaseAck, async (q) => {
          leases.ack(q, this.peerNodeId);
          this.send(type, requestId, encodeLeaseAckResponse());
        });
        return;
      default:
        this.serve(ev, decodeInvalidate, async (q, signal) => {
          const answer = await leases.invalidate(q, signal);
          this.send(type, requestId, encodeInvalidateAnswer(answer));
        });
    }
  }

  /**
   * Runs one request to exactly one response; a duplicate id in flight is a protocol error.
   * The request meta is decoded first, and a MetaError there is the peer's: the connection is
   * closed. Once it decoded, a MetaError is ours (an encoder refusing our own answer, e.g. an
   * etag over 1024 bytes from an HTTP origin): that one request is answered INTERNAL, and the
   * connection with every other request on it carries on.
   */
  private serve<Q>(
    ev: FrameEvent,
    decode: (meta: Buffer) => Q,
    work: (q: Q, signal: AbortSignal) => Promise<void>,
  ): void {
    if (this.inflight.has(ev.requestId)) {
      this.protocolError(`request id ${ev.requestId} reused while in flight`);
      return;
    }
    let q: Q;
    try {
      q = decode(ev.meta);
    } catch (err) {
      if (err instanceof MetaError) this.protocolError(`bad request meta: ${err.message}`);
      else this.sendError(ev.requestId, CacheError.from(err));
      return;
    }
    const ac = new AbortController();
    this.inflight.set(ev.requestId, ac);
    work(q, ac.signal)
      .catch((err: unknown) => {
        if (err instanceof MetaError) {
          const what = TYPE_NAMES.get(ev.type) ?? `type ${ev.type}`;
          const reason = `could not encode the ${what} answer: ${err.message}`;
          this.server.opts.logger.warn(
            { peer: this.peer, reason },
            'transport answer refused by its encoder',
          );
          this.sendError(ev.requestId, new CacheError('INTERNAL', reason, { cause: err }));
        } else {
          this.sendError(ev.requestId, CacheError.from(err));
        }
      })
      .finally(() => this.inflight.delete(ev.requestId));
  }

  private send(type: number, requestId: number, meta: Buffer): void {
    if (this.closed) return;
    this.native.b.transportSend(this.conn, type, FLAG_RESPONSE, requestId, meta, null, null, 0, 0, 0);
  }

  private sendError(requestId: number, err: CacheError): void {
    this.send(FrameType.ERROR, requestId, encodeError(err.code, err.message));
  }

  private protocolError(reason: string): void {
    this.server.opts.logger.warn({ peer: this.peer, reason }, 'transport protocol error; closing connection');
    this.native.b.transportClose(this.conn, `protocol error: ${reason}`, false);
  }
}
