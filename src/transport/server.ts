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
import type { InvalidationTarget } from '../coherence/invalidation.js';
import { CacheError } from '../errors/cache-error.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import type { InvalidateAnswer } from './invalidate-messages.js';
import type { LeaseAck, LeaseGrantResponse, LeaseVersion } from './lease-messages.js';
import { defaultTransportLogger, type TransportLogger } from './logger.js';
import { type FrameEvent, type NativeTransport, nativeTransport } from './native.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT } from './protocol.js';
import { ServerConnection } from './server-connection.js';

/**
 * What to send for a read. `crc32c` is the CRC32C of exactly these bytes: pass the chunk's stored
 * checksum for a full-chunk read (free); leave it out for a sub-range and the addon computes it on
 * its I/O thread. A `buffer` must not be modified until the send completes (it is pinned, not copied).
 */
export type ChunkPayload =
  | { kind: 'buffer'; data: Buffer; crc32c?: number }
  | { kind: 'file'; path: string; offset: number; length: number; crc32c?: number };

export interface TransportHandler {
  /** Throw a CacheError to answer with an error frame carrying its code. */
  /** `localOnly`: answer from local tiers or NOT_FOUND, never fill (see ReadChunkRequest). */
  readChunk(
    name: ChunkName,
    offset: number,
    length: number,
    signal: AbortSignal,
    localOnly?: boolean,
  ): Promise<ChunkPayload>;
  stat(name: ObjectName, signal: AbortSignal): Promise<ObjectInfo>;
  /** The home side of the lease protocol (docs/coherence.md); absent: lease frames answer UNSUPPORTED. */
  leases?: LeaseService;
}

/** What a home answers on the transport (src/coherence/home.ts implements it). */
export interface LeaseService {
  /** LEASE_GRANT (held undefined) or LEASE_RENEW from holder `holderId` (its HELLO nodeId), on `conn`. */
  lease(
    name: ObjectName,
    holderId: string,
    held: LeaseVersion | undefined,
    signal: AbortSignal,
    conn: HolderConnection,
  ): Promise<LeaseGrantResponse>;
  /** LEASE_ACK: a revocation acknowledged on a new connection, or revokeId 0: a lease released early. */
  ack(ack: LeaseAck, holderId: string): void;
  /** INVALIDATE from a peer: answered when complete here. */
  invalidate(target: InvalidationTarget, signal: AbortSignal): Promise<InvalidateAnswer>;
}

/** A holder's connection, as the home uses it to send LEASE_REVOKE back. */
export interface HolderConnection {
  readonly isOpen: boolean;
  request(type: number, meta: Buffer, timeoutMs: number): Promise<FrameEvent>;
}

export interface TransportServerOptions {
  host: string;
  port: number;
  handler: TransportHandler;
  maxConnections?: number;
  maxInFlightPerConnection?: number;
  maxFrameBytes?: number;
  nodeId?: string;
  logger?: TransportLogger;
  /** A connection that has not completed HELLO by then is closed (default 10 s). */
  helloTimeoutMs?: number;
  /** How long close() lets queued responses drain before cutting connections. */
  closeGraceMs?: number;
  /** Cluster secret: peers must prove it (src/transport/auth.ts) before any request. Null: no auth. */
  secret?: Buffer | null;
}

export class TransportServer {
  private readonly conns = new Map<number, ServerConnection>();
  private closing: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;

  private constructor(
    private readonly native: NativeTransport,
    private readonly listenerId: number,
    readonly address: { host: string; port: number },
    readonly opts: Required<Omit<TransportServerOptions, 'host' | 'port' | 'secret'>> & {
      secret: Buffer | null;
    },
  ) {}

  static async listen(o: TransportServerOptions): Promise<TransportServer> {
    const opts = {
      handler: o.handler,
      maxConnections: o.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      maxInFlightPerConnection: o.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT,
      maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      nodeId: o.nodeId ?? `${o.host}:${o.port}`,
      logger: o.logger ?? defaultTransportLogger(),
      closeGraceMs: o.closeGraceMs ?? 1000,
      helloTimeoutMs: o.helloTimeoutMs ?? 10_000,
      secret: o.secret ?? null,
    };
    for (const k of ['maxConnections', 'maxInFlightPerConnection', 'maxFrameBytes'] as const) {
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
    );
    const server = new TransportServer(native, id, { host: o.host, port }, opts);
    native.addListener(id, { onAccepted: (conn, peer) => server.accept(conn, peer) });
    native.ref();
    return server;
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
