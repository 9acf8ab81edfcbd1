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
import { ADMIT_HANDSHAKE, ADMIT_OPEN } from './binding.js';
import { decodeHello, encodeError, encodeHello } from './messages.js';
import type { ConnectionSink, FrameEvent, NativeTransport } from './native.js';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  FEATURES,
  FLAG_RESPONSE,
  FrameType,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
} from './protocol.js';
import { type Caller, type CallOptions, Inbound, type Reply, RequestMatcher, type Response } from './rpc.js';
import type { TransportServer } from './server.js';

export class ServerConnection implements ConnectionSink {
  private helloDone = false;
  /** With a cluster secret: the proof this peer's AUTH frame must carry; undefined once authenticated. */
  private expectedProof: Buffer | undefined;
  private closed = false;
  /** The peer's HELLO nodeId: a lease holder's identity at its home. */
  private peerNodeId = '';
  /** The peer's HELLO feature bits. */
  private peerFeatures = 0;
  /** Requests this side sends to the peer (a home's LEASE_REVOKE travels on the holder's own connection). */
  private readonly outgoing: RequestMatcher;
  /** Requests the peer sends, served by the server's registered messages. */
  private readonly inbound: Inbound;

  constructor(
    private readonly server: TransportServer,
    private readonly native: NativeTransport,
    private readonly conn: number,
    private readonly peer: string,
  ) {
    // Until the handshake completes the addon reads only small HELLO/AUTH frames, one at a time,
    // and closes the connection at preAuthTimeoutMs (docs/wire-protocol.md): nothing to time here.
    this.outgoing = new RequestMatcher({
      peer,
      write: (type, id, meta) => native.b.transportSend(conn, type, 0, id, meta, null, null, 0, 0, 0),
    });
    const self = this;
    const from: Caller = {
      get nodeId() {
        return self.peerNodeId;
      },
      get features() {
        return self.peerFeatures;
      },
      peer,
      channel: {
        get isOpen() {
          return self.isOpen;
        },
        request: (type, meta, opts) => this.request(type, meta, opts),
      },
    };
    this.inbound = new Inbound({
      messages: server.messages,
      from,
      respond: (type, id, reply) => this.respond(type, id, reply),
      protocolError: (reason) => this.protocolError(reason),
      warn: (reason, what) => server.opts.logger.warn({ peer: this.peer, reason }, what),
    });
  }

  onConnected(): void {}

  get nodeId(): string {
    return this.peerNodeId;
  }

  get isOpen(): boolean {
    return !this.closed && this.helloDone && !this.expectedProof;
  }

  /**
   * Sends a request to the peer on this connection. Resolves with the response;
   * rejects on an ERROR answer, timeout or close.
   */
  request(type: number, meta: Buffer, opts?: CallOptions): Promise<Response> {
    if (!this.isOpen) {
      return Promise.reject(new CacheError('SHUTTING_DOWN', `connection to ${this.peer} is closed`));
    }
    return this.outgoing.request(type, meta, opts?.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, opts?.signal);
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
      if (!this.outgoing.answer(ev))
        this.protocolError(`response of type ${ev.type} to a request of another type`);
      return;
    }
    switch (ev.type) {
      case FrameType.HELLO:
        this.protocolError('HELLO after the handshake');
        return;
      case FrameType.ERROR:
        // A client only sends connection-level errors, and closes after them.
        this.server.opts.logger.warn({ peer: this.peer }, 'transport client reported an error; closing');
        this.native.b.transportClose(this.conn, 'client reported an error', false);
        return;
    }
    // Every other type is a request, answered once: by its registered handler, or UNSUPPORTED.
    this.inbound.request(ev);
  }

  onClosed(reason: string): void {
    this.closed = true;
    this.outgoing.fail(new CacheError('SHUTTING_DOWN', `connection to ${this.peer} closed: ${reason}`));
    this.inbound.abortAll(`connection closed: ${reason}`);
    const log = this.server.opts.logger;
    if (reason.startsWith('protocol error'))
      log.warn({ peer: this.peer, reason }, 'transport connection closed');
    else log.info({ peer: this.peer, reason }, 'transport connection closed');
    this.server.forget(this.conn);
  }

  shutdown(): void {
    this.inbound.abortAll('server shutting down');
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
    this.peerFeatures = hello.features;
    const o = this.server.opts;
    const extensions: { tag: number; value: Buffer }[] = [];
    let features = FEATURES;
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
    // Without a secret the HELLO is the whole handshake; with one, the addon reads the AUTH next.
    this.send(FrameType.HELLO, ev.requestId, reply, o.secret ? ADMIT_HANDSHAKE : ADMIT_OPEN);
    if (!o.secret) this.outgoing.ready();
  }

  /** The one frame allowed between HELLO and requests when a secret is set (the pre-auth timeout still runs). */
  private onAuth(ev: FrameEvent): void {
    if (ev.type !== FrameType.AUTH || !proofMatches(ev.meta, this.expectedProof!)) {
      this.refuse(
        ev.type === FrameType.AUTH
          ? 'cluster secret mismatch'
          : `expected AUTH after HELLO, got ${this.server.messages.name(ev.type)}`,
      );
      return;
    }
    this.expectedProof = undefined;
    this.send(FrameType.AUTH, ev.requestId, Buffer.alloc(0), ADMIT_OPEN);
    this.outgoing.ready();
  }

  private refuse(reason: string): void {
    this.server.opts.logger.warn({ peer: this.peer, reason }, 'transport peer refused');
    this.sendError(0, new CacheError('UNAUTHORIZED', reason));
    this.native.b.transportClose(this.conn, `unauthorized: ${reason}`, true);
  }

  private respond(type: number, id: number, reply: Reply): void {
    if (this.closed) return;
    if (Buffer.isBuffer(reply)) {
      this.send(type, id, reply);
      return;
    }
    const p = reply.payload;
    const crc = p.crc32c ?? -1;
    if (p.kind === 'buffer') {
      this.native.b.transportSend(this.conn, type, FLAG_RESPONSE, id, null, p.data, null, 0, 0, crc);
    } else {
      this.native.b.transportSend(
        this.conn,
        type,
        FLAG_RESPONSE,
        id,
        null,
        null,
        p.path,
        p.offset,
        p.length,
        crc,
      );
    }
  }

  private send(
    type: number,
    requestId: number,
    meta: Buffer,
    admit?: typeof ADMIT_HANDSHAKE | typeof ADMIT_OPEN,
  ): void {
    if (this.closed) return;
    this.native.b.transportSend(this.conn, type, FLAG_RESPONSE, requestId, meta, null, null, 0, 0, 0, admit);
  }

  private sendError(requestId: number, err: CacheError): void {
    this.send(FrameType.ERROR, requestId, encodeError(err.code, err.message));
  }

  private protocolError(reason: string): void {
    this.server.opts.logger.warn({ peer: this.peer, reason }, 'transport protocol error; closing connection');
    this.native.b.transportClose(this.conn, `protocol error: ${reason}`, false);
  }
}
