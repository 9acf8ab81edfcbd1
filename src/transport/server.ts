/**
 * The serving side of the native transport. The node decides WHAT to send
 * (its handler returns a Buffer it already holds, or a chunk file range); the
 * addon sends it from that memory or file on its I/O thread. Every request
 * gets exactly one response: the addon stops reading a connection at
 * maxInFlightPerConnection unanswered requests, so a missing response would
 * stall it.
 */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ChunkName } from '../chunk/name.js';
import { CacheError } from '../errors/cache-error.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import type { NativeChunkSource } from './binding.js';
import { defaultTransportLogger, type TransportLogger } from './logger.js';
import { decodeObjectName, decodeReadChunk, encodeObjectInfo } from './messages.js';
import { type NativeTransport, nativeTransport } from './native.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_UNAUTHENTICATED,
  DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
  DEFAULT_PREAUTH_TIMEOUT_MS,
  FEATURE_CONTENT_MD5,
  FrameType,
} from './protocol.js';
import { checkRange } from './range.js';
import { type ChunkPayload, type MessageHandler, Messages } from './rpc.js';
import { ServerConnection } from './server-connection.js';
import type { TransportListener } from './transport.js';

/**
 * What to send for a read. `crc32c` is the CRC32C of exactly these bytes: pass the chunk's stored
 * checksum for a full-chunk read (free); leave it out for a sub-range and the addon computes it on
 * its I/O thread. A `buffer` must not be modified until the send completes (it is pinned, not copied).
 */
export type { ChunkPayload };

/** The chunk data plane (READ_CHUNK, STAT), registered by the server when given. */
export interface TransportHandler {
  /** Throw a CacheError to answer with an error frame carrying its code. */
  /**
   * `localOnly`: answer from local tiers or NOT_FOUND, never fill; `standInFor`: the
   * members above this one the asker found down (see ReadChunkRequest).
   */
  readChunk(
    name: ChunkName,
    offset: number,
    length: number,
    signal: AbortSignal,
    localOnly?: boolean,
    standInFor?: readonly string[],
    /** The I/O thread found this chunk's NVMe file damaged, gone or short: never send it as it is. */
    nvmeFailed?: boolean,
  ): Promise<ChunkPayload>;
  stat(name: ObjectName, signal: AbortSignal): Promise<ObjectInfo>;
}

export interface TransportServerOptions {
  host: string;
  port: number;
  /** READ_CHUNK and STAT; absent: they are answered UNSUPPORTED unless registered some other way. */
  handler?: TransportHandler;
  /** Messages served on this server's connections (more can be registered with `register`). */
  messages?: Messages;
  maxConnections?: number;
  maxInFlightPerConnection?: number;
  maxFrameBytes?: number;
  nodeId?: string;
  logger?: TransportLogger;
  /**
   * Before authentication (docs/wire-protocol.md): a connection that has not completed the
   * handshake (HELLO, and AUTH when a secret is set) by then is closed (default 5 s)...
   */
  preAuthTimeoutMs?: number;
  /** ...at most this many are in the handshake at once; one more closes the oldest (default 256)... */
  maxUnauthenticated?: number;
  /** ...and at most this many from one address (IPv6: one /64), the oldest closed likewise (default 16). */
  maxUnauthenticatedPerAddress?: number;
  /** How long close() lets queued responses drain before cutting connections. */
  closeGraceMs?: number;
  /** Cluster secret: peers must prove it (src/transport/auth.ts) before any request. Null: no auth. */
  secret?: Buffer | null;
}

export class TransportServer implements TransportListener {
  /** Request types this server serves: `register(type, name, handler)` (src/transport/rpc.ts). */
  readonly messages: Messages;
  private readonly conns = new Map<number, ServerConnection>();
  private closing: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;

  private constructor(
    private readonly native: NativeTransport,
    private readonly listenerId: number,
    readonly address: { host: string; port: number },
    readonly opts: Required<
      Omit<TransportServerOptions, 'host' | 'port' | 'secret' | 'handler' | 'messages'>
    > & {
      secret: Buffer | null;
    },
    messages: Messages,
  ) {
    this.messages = messages;
  }

  /** Serves requests of `type` on every connection, present and future. */
  register<Q>(type: number, name: string, handler: MessageHandler<Q>): void {
    this.messages.register(type, name, handler);
  }

  static async listen(o: TransportServerOptions): Promise<TransportServer> {
    const opts = {
      maxConnections: o.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      maxInFlightPerConnection: o.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT,
      maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      nodeId: o.nodeId ?? `${o.host}:${o.port}`,
      logger: o.logger ?? defaultTransportLogger(),
      closeGraceMs: o.closeGraceMs ?? 1000,
      preAuthTimeoutMs: o.preAuthTimeoutMs ?? DEFAULT_PREAUTH_TIMEOUT_MS,
      maxUnauthenticated: o.maxUnauthenticated ?? DEFAULT_MAX_UNAUTHENTICATED,
      maxUnauthenticatedPerAddress: o.maxUnauthenticatedPerAddress ?? DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
      secret: o.secret ?? null,
    };
    const limits = [
      'maxConnections',
      'maxInFlightPerConnection',
      'maxFrameBytes',
      'preAuthTimeoutMs',
      'maxUnauthenticated',
      'maxUnauthenticatedPerAddress',
    ] as const;
    for (const k of limits) {
      if (!Number.isInteger(opts[k]) || opts[k] < 1 || opts[k] > 0xffffffff) {
        throw new CacheError(
          'CONFIG_INVALID',
          `transport server: ${k} must be an integer ≥ 1, got ${opts[k]}`,
        );
      }
    }
    const native = nativeTransport();
    const ip = isIP(o.host) ? o.host : (await lookup(o.host)).address;
    const { id, port } = native.b.transportListen(
      ip,
      o.port,
      opts.maxFrameBytes,
      opts.maxInFlightPerConnection,
      opts.maxConnections,
      opts.preAuthTimeoutMs,
      opts.maxUnauthenticated,
      opts.maxUnauthenticatedPerAddress,
    );
    const messages = o.messages ?? new Messages();
    if (o.handler) registerChunkMessages(messages, o.handler, opts.maxFrameBytes);
    const server = new TransportServer(native, id, { host: o.host, port }, opts, messages);
    native.addListener(id, { onAccepted: (conn, peer) => server.accept(conn, peer) });
    native.ref();
    return server;
  }

  /**
   * Answers READ_CHUNK hits from the native store on the addon's I/O thread (no JavaScript round
   * trip): a chunk of a version bound in `source.bindings` and whole in `source.store`, asked by an
   * admitted peer. Misses, NVMe-only chunks, stand-in requests and every error still come to the
   * handler. `null` turns it off.
   */
  serveNative(source: Omit<NativeChunkSource, 'maxFrameBytes'> | null): void {
    this.native.b.transportServeNative(
      this.listenerId,
      source ? { ...source, maxFrameBytes: this.opts.maxFrameBytes } : null,
    );
  }

  /** The addon's counters (process-wide: shared by every server and client in this process). */
  stats() {
    const s = this.native.b.transportStats();
    return { ...s, bytesSent: s.bytesWritev + s.bytesSendfile, connections: this.conns.size };
  }

  /** Stops accepting, aborts handlers, tells peers SHUTTING_DOWN, and resolves when every connection is closed. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.native.removeListener(this.listenerId);
      this.allClosed = () => {
        this.native.unref();
        resolve();
      };
      for (const c of this.conns.values()) c.shutdown();
      this.maybeClosed();
    });
    return this.closing;
  }

  private accept(conn: number, peer: string): void {
    if (this.closing) {
      this.native.b.transportClose(conn, 'server shutting down', false);
      return;
    }
    const c = new ServerConnection(this, this.native, conn, peer);
    this.conns.set(conn, c);
    this.native.attach(conn, c);
  }

  /** @internal */
  forget(conn: number): void {
    this.conns.delete(conn);
    this.maybeClosed();
  }

  private maybeClosed(): void {
    if (this.allClosed && this.conns.size === 0) this.allClosed();
  }
}

/** READ_CHUNK and STAT over a TransportHandler: the chunk data plane's two messages. */
function registerChunkMessages(messages: Messages, h: TransportHandler, maxFrameBytes: number): void {
  messages.register(FrameType.READ_CHUNK, 'READ_CHUNK', {
    decode: decodeReadChunk,
    async serve(q, { signal, nvmeFailed }) {
      checkRange(q.name, q.offset, q.length);
      if (q.length > maxFrameBytes) {
        throw new CacheError('TOO_LARGE', `read of ${q.length} bytes exceeds maxFrameBytes ${maxFrameBytes}`);
      }
      const p = await h.readChunk(q.name, q.offset, q.length, signal, q.localOnly, q.standInFor, nvmeFailed);
      const got = p.kind === 'buffer' ? p.data.length : p.length;
      if (got !== q.length) {
        throw new CacheError('INTERNAL', `handler returned ${got} bytes for a read of ${q.length}`);
      }
      return { payload: p };
    },
  });
  messages.register(FrameType.STAT, 'STAT', {
    decode: decodeObjectName,
    serve: async (n, { signal, from }) =>
      encodeObjectInfo(await h.stat(n, signal), (from.features & FEATURE_CONTENT_MD5) !== 0),
  });
}
