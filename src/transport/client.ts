/**
 * A client for one peer: a small pool of multiplexed connections, created on
 * demand and replaced when they die, so a restarted peer is used again by the
 * next request without any reconnect loop.
 */
import type { ChunkName } from '../chunk/name.js';
import type { InvalidationTarget } from '../coherence/invalidation.js';
import { CacheError } from '../errors/cache-error.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import { decodeInvalidateAnswer, encodeInvalidate, type InvalidateAnswer } from './invalidate-messages.js';
import {
  decodeLeaseAckResponse,
  decodeLeaseGrantResponse,
  encodeLeaseAck,
  encodeLeaseGrantRequest,
  encodeLeaseRenewRequest,
  type LeaseAck,
  type LeaseGrantResponse,
  type LeaseVersion,
} from './lease-messages.js';
import { defaultTransportLogger, type TransportLogger } from './logger.js';
import { decodeObjectInfo, decodePing, encodeObjectName, encodePing, encodeReadChunk } from './messages.js';
import { type NativeTransport, nativeTransport } from './native.js';
import { PeerConnection } from './peer-connection.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT, FrameType } from './protocol.js';
import { checkRange } from './range.js';

export interface TransportClientOptions {
  /** An IP address, or a name resolved (dns.lookup) each time a connection is opened. */
  host: string;
  port: number;
  /** Connections in the pool (default 2). */
  connections?: number;
  /** Per request, and for connect + handshake. */
  timeoutMs: number;
  /** Requests in flight per connection; more wait in a queue (default 256, or the server's lower limit). */
  maxInFlight?: number;
  maxFrameBytes?: number;
  nodeId?: string;
  logger?: TransportLogger;
  /** Cluster secret to prove (src/transport/auth.ts); null or absent: none. */
  secret?: Buffer | null;
  /** Requests the server sends back on these connections (a home's LEASE_REVOKE); see PeerConnectionOptions. */
  onRequest?: ((type: number, meta: Buffer) => Promise<Buffer>) | undefined;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** READ_CHUNK only: the peer answers from its local tiers or NOT_FOUND, never fills. */
  localOnly?: boolean;
  /** This request's own timeout instead of the client's (INVALIDATE). */
  timeoutMs?: number;
}

export class TransportClient {
  private readonly native: NativeTransport;
  private readonly pool: (PeerConnection | undefined)[];
  private readonly opts: Required<Omit<TransportClientOptions, 'onRequest'>> &
    Pick<TransportClientOptions, 'onRequest'>;
  private next = 0;
  private closed = false;

  constructor(o: TransportClientOptions) {
    this.opts = {
      host: o.host,
      port: o.port,
      connections: o.connections ?? 2,
      timeoutMs: o.timeoutMs,
      maxInFlight: o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      nodeId: o.nodeId ?? `client-${process.pid}`,
      logger: o.logger ?? defaultTransportLogger(),
      secret: o.secret ?? null,
      onRequest: o.onRequest,
    };
    for (const k of ['connections', 'timeoutMs', 'maxInFlight', 'maxFrameBytes'] as const) {
      const v = this.opts[k];
      if (!Number.isInteger(v) || v < 1) {
        throw new CacheError('CONFIG_INVALID', `transport client: ${k} must be an integer ≥ 1, got ${v}`);
      }
    }
    this.native = nativeTransport();
    this.pool = new Array(this.opts.connections).fill(undefined);
  }

  /** Reads `length` bytes at `offset` of a chunk; resolves only after the CRC32C was verified. */
  async readChunk(
    name: ChunkName,
    offset: number,
    length: number,
    opts?: RequestOptions,
  ): Promise<{ data: Buffer; crc32c: number }> {
    checkRange(name, offset, length);
    if (length > this.opts.maxFrameBytes) {
      throw new CacheError(
        'TOO_LARGE',
        `read of ${length} bytes exceeds maxFrameBytes ${this.opts.maxFrameBytes}`,
      );
    }
    const conn = this.pick();
    const ev = await conn.request(
      FrameType.READ_CHUNK,
      encodeReadChunk({ name, offset, length, localOnly: opts?.localOnly }),
      opts?.signal,
    );
    const data = ev.payload ?? Buffer.alloc(0);
    if (data.length !== length) {
      conn.close(`protocol error: READ_CHUNK answered ${data.length} bytes for ${length}`);
      throw new CacheError(
        'ORIGIN_BAD_RESPONSE',
        `peer ${conn.peer}: got ${data.length} bytes for a read of ${length}`,
      );
    }
    if (!ev.crcOk) {
      throw new CacheError(
        'CHECKSUM_MISMATCH',
        `peer ${conn.peer}: payload CRC32C mismatch for chunk ${name.index}`,
      );
    }
    return { data, crc32c: ev.payloadCrc };
  }

  async stat(name: ObjectName, opts?: RequestOptions): Promise<ObjectInfo> {
    const ev = await this.pick().request(FrameType.STAT, encodeObjectName(name), opts?.signal);
    return decodeObjectInfo(ev.meta);
  }

  /** LEASE_GRANT, or LEASE_RENEW when `held` is given (docs/coherence.md, "Wire messages"). */
  async lease(
    name: ObjectName,
    held: LeaseVersion | undefined,
    opts?: RequestOptions,
  ): Promise<LeaseGrantResponse> {
    const ev = held
      ? await this.pick().request(
          FrameType.LEASE_RENEW,
          encodeLeaseRenewRequest({ ...name, held }),
          opts?.signal,
        )
      : await this.pick().request(FrameType.LEASE_GRANT, encodeLeaseGrantRequest(name), opts?.signal);
    return decodeLeaseGrantResponse(ev.meta);
  }

  /** LEASE_ACK: a revocation acknowledged on a new connection, or (revokeId 0) a lease released early. */
  async leaseAck(ack: LeaseAck, opts?: RequestOptions): Promise<void> {
    const ev = await this.pick().request(FrameType.LEASE_ACK, encodeLeaseAck(ack), opts?.signal);
    decodeLeaseAckResponse(ev.meta);
  }

  /** INVALIDATE: answered when the invalidation completed at the peer (give it a long `timeoutMs`). */
  async invalidate(target: InvalidationTarget, opts?: RequestOptions): Promise<InvalidateAnswer> {
    const ev = await this.pick().request(
      FrameType.INVALIDATE,
      encodeInvalidate(target),
      opts?.signal,
      opts?.timeoutMs,
    );
    return decodeInvalidateAnswer(ev.meta);
  }

  /** Round-trip time in milliseconds (fractional). */
  async ping(opts?: RequestOptions): Promise<number> {
    const start = process.hrtime.bigint();
    const ev = await this.pick().request(FrameType.PING, encodePing(Date.now()), opts?.signal);
    decodePing(ev.meta);
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  /** Fails every pending request with SHUTTING_DOWN and closes the connections. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.pool) c?.close('client closed', 'SHUTTING_DOWN');
    this.pool.fill(undefined);
  }

  /** The least-loaded live connection, opening one in an empty or dead slot first. */
  private pick(): PeerConnection {
    if (this.closed) throw new CacheError('SHUTTING_DOWN', 'transport client is closed');
    let best: PeerConnection | undefined;
    for (let i = 0; i < this.pool.length; i++) {
      const slot = (this.next + i) % this.pool.length;
      let c = this.pool[slot];
      if (!c?.alive) {
        c = new PeerConnection(this.native, { ...this.opts });
        this.pool[slot] = c;
      }
      if (!best || c.load < best.load) best = c;
    }
    this.next = (this.next + 1) % this.pool.length;
    return best!;
  }
}
