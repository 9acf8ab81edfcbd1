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
import { FEATURES, FLAG_RESPONSE, FrameType, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from './protocol.js';
import {
  type CallOptions,
  Inbound,
  type Messages,
  type Reply,
  RequestMatcher,
  type RequestMeta,
  type Response,
} from './rpc.js';

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
  /** Requests the server sends on this connection (a home's LEASE_REVOKE); unregistered types: UNSUPPORTED. */
  messages: Messages;
}

export class PeerConnection implements ConnectionSink {
  private state: 'connecting' | 'hello' | 'auth' | 'ready' | 'closed' = 'connecting';
  private readonly clientNonce = nonce();
  /** 0 until the socket exists (a host name is resolved first). */
  private conn = 0;
  private readonly outgoing: RequestMatcher;
  private readonly inbound: Inbound;
  private maxInFlight: number;
  private lastFrameAt = Date.now();
  private readonly connectTimer: NodeJS.Timeout;
  private closeReason = '';
  private closeCode: ErrorCode = 'PEER_UNAVAILABLE';
  /** The server's HELLO feature bits, once it answered. */
  private peerFeatures = 0;

  constructor(
    private readonly native: NativeTransport,
    private readonly o: PeerConnectionOptions,
  ) {
    this.maxInFlight = o.maxInFlight;
    this.outgoing = new RequestMatcher({
      peer: this.peer,
      write: (type, id, meta) => native.b.transportSend(this.conn, type, 0, id, meta, null, null, 0, 0, 0),
      cancel: (id) => native.b.transportSend(this.conn, FrameType.CANCEL, 0, id, null, null, null, 0, 0, 0),
      maxInFlight: () => this.maxInFlight,
      features: () => this.peerFeatures,
      timedOut: () => {
        // A peer that has said nothing for a whole timeout is presumed dead: drop the connection so
        // the next request reconnects instead of queueing behind it.
        const silentMs = Date.now() - this.lastFrameAt;
        if (silentMs >= this.o.timeoutMs) this.close(`peer silent for ${silentMs} ms`);
      },
      busy: () => native.ref(),
      idle: () => native.unref(),
    });
    const self = this;
    const channel = {
      get isOpen() {
        return self.state === 'ready';
      },
      request: (type: number, meta: Buffer, opts?: CallOptions) => this.request(type, meta, opts),
    };
    this.inbound = new Inbound({
      messages: o.messages,
      from: {
        nodeId: '',
        peer: this.peer,
        get features() {
          return self.peerFeatures;
        },
        channel,
      },
      respond: (type, id, reply) => this.respond(type, id, reply),
      protocolError: (reason) => this.close(`protocol error: ${reason}`),
      warn: (reason, what) => o.logger.warn({ peer: this.peer, reason }, what),
    });
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
    return this.outgoing.load;
  }

  /** `opts.timeoutMs`: this request's own limit (INVALIDATE waits out leases), instead of the connection's. */
  request(type: number, meta: RequestMeta, opts?: CallOptions): Promise<Response> {
    if (this.state === 'closed') return Promise.reject(this.lost());
    return this.outgoing.request(type, meta, opts?.timeoutMs ?? this.o.timeoutMs, opts?.signal);
  }

  close(reason: string, code: ErrorCode = 'PEER_UNAVAILABLE'): void {
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
      features: FEATURES,
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
      this.inbound.request(ev); // PING, a home's LEASE_REVOKE: every one gets exactly one response
      return;
    }
    if (!this.outgoing.answer(ev))
      this.close(`protocol error: response of type ${ev.type} to a request of another type`);
  }

  onClosed(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = reason;
    clearTimeout(this.connectTimer);
    this.outgoing.fail(this.lost());
    this.inbound.abortAll(`connection closed: ${reason}`);
    this.o.logger.info({ peer: this.peer, reason }, 'transport client connection closed');
  }

  private respond(type: number, id: number, reply: Reply): void {
    if (this.state === 'closed') return;
    if (!Buffer.isBuffer(reply)) {
      // Chunk payloads flow to the connecting side only; a handler here answering with one is a bug.
      const err = encodeError('INTERNAL', 'a client connection does not send payloads');
      this.native.b.transportSend(this.conn, FrameType.ERROR, FLAG_RESPONSE, id, err, null, null, 0, 0, 0);
      return;
    }
    this.native.b.transportSend(this.conn, type, FLAG_RESPONSE, id, reply, null, null, 0, 0, 0);
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
    this.peerFeatures = hello.features;
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
    this.outgoing.ready();
  }

  private lost(): CacheError {
    return new CacheError(this.closeCode, `peer ${this.peer}: connection lost: ${this.closeReason}`);
  }
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
