/**
 * A client for one peer: a small pool of multiplexed connections, created on
 * demand and replaced when they die, so a restarted peer is used again by the
 * next request without any reconnect loop.
 */
import type { ChunkName } from '../chunk/name.js';
import { CacheError } from '../errors/cache-error.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import { defaultTransportLogger, type TransportLogger } from './logger.js';
import { decodeObjectInfo, decodePing, encodeObjectName, encodePing, encodeReadChunk } from './messages.js';
import { type NativeTransport, nativeTransport } from './native.js';
import { PeerConnection } from './peer-connection.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT, FEATURE_STAND_IN, FrameType } from './protocol.js';
import { checkRange } from './range.js';
import { type CallOptions, type MessageHandler, Messages, type Response } from './rpc.js';
import type { TransportPeer } from './transport.js';

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
  /** Requests the server sends back on these connections (a home's LEASE_REVOKE); may be shared by clients. */
  messages?: Messages;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** READ_CHUNK only: the peer answers from its local tiers or NOT_FOUND, never fills. */
  localOnly?: boolean;
  /**
   * READ_CHUNK only: a stand-in request reporting these members (ranked above
   * the peer) down (ReadChunkRequest.standInFor). To a peer that did not
   * announce FEATURE_STAND_IN it goes out local-only instead.
   */
  standInFor?: readonly string[];
  /** This request's own timeout instead of the client's. */
  timeoutMs?: number;
}

export class TransportClient implements TransportPeer {
  private readonly native: NativeTransport;
  private readonly pool: (PeerConnection | undefined)[];
  private readonly opts: Required<TransportClientOptions>;
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
      messages: o.messages ?? new Messages(),
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
    const report = opts?.standInFor;
    const meta = report
      ? (features: number) =>
          encodeReadChunk(
            (features & FEATURE_STAND_IN) !== 0
              ? { name, offset, length, standInFor: report }
              : { name, offset, length, localOnly: true },
          )
      : encodeReadChunk({ name, offset, length, localOnly: opts?.localOnly });
    const ev = await conn.request(FrameType.READ_CHUNK, meta, {
      signal: opts?.signal,
      timeoutMs: opts?.timeoutMs,
    });
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
    const ev = await this.pick().request(FrameType.STAT, encodeObjectName(name), {
      signal: opts?.signal,
      timeoutMs: opts?.timeoutMs,
    });
    return decodeObjectInfo(ev.meta);
  }

  /** One request of any type to the least-loaded connection (src/transport/rpc.ts). */
  request(type: number, meta: Buffer, opts?: CallOptions): Promise<Response> {
    try {
      return this.pick().request(type, meta, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Requests the server may send back on these connections, by type. */
  get messages(): Messages {
    return this.opts.messages;
  }

  /** Serves requests of `type` the server sends back on these connections. */
  register<Q>(type: number, name: string, handler: MessageHandler<Q>): void {
    this.opts.messages.register(type, name, handler);
  }

  /** Round-trip time in milliseconds (fractional). */
  async ping(opts?: RequestOptions): Promise<number> {
    const start = process.hrtime.bigint();
    const ev = await this.pick().request(FrameType.PING, encodePing(Date.now()), {
      signal: opts?.signal,
      timeoutMs: opts?.timeoutMs,
    });
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
