/**
 * The transport as the rest of the program sees it: listen and serve
 * registered messages, connect and send requests, read chunks. The native TCP
 * transport (addon/) is the one backend today; another (RDMA over ibverbs)
 * implements this same interface and passes the same contract suite
 * (test/transport/contract.ts); docs/wire-protocol.md, "Messages and
 * backends", says how it plugs in.
 */
import type { ChunkName } from '../chunk/name.js';
import { type RequestOptions, TransportClient, type TransportClientOptions } from './client.js';
import type { Messages, RequestChannel } from './rpc.js';
import { TransportServer, type TransportServerOptions } from './server.js';

/** The connecting side: a (pooled) connection to one peer. */
export interface TransportPeer extends RequestChannel {
  /**
   * Bytes [offset, offset + length) of a chunk, resolved only after their CRC32C was verified.
   * A backend moves the payload its own way (TCP: writev/sendfile; RDMA: a one-sided read).
   */
  readChunk(
    name: ChunkName,
    offset: number,
    length: number,
    opts?: RequestOptions,
  ): Promise<{ data: Buffer; crc32c: number }>;
  /** Requests the peer sends back on this connection, by type (a home's LEASE_REVOKE). */
  readonly messages: Messages;
  /** Fails every pending request with SHUTTING_DOWN and closes. */
  close(): Promise<void>;
}

/** The accepting side. Its handler (TransportServerOptions.handler) serves READ_CHUNK and STAT. */
export interface TransportListener {
  readonly address: { host: string; port: number };
  /** Request types served on every connection, present and future. */
  readonly messages: Messages;
  /** Stops accepting, aborts handlers, tells peers SHUTTING_DOWN, resolves when all connections closed. */
  close(): Promise<void>;
}

export interface Transport {
  /** For logs and test titles ("native TCP"). */
  readonly name: string;
  listen(o: TransportServerOptions): Promise<TransportListener>;
  connect(o: TransportClientOptions): TransportPeer;
}

/** The native TCP transport: epoll I/O threads in the addon, zero-copy sends (docs/transport.md). */
export const nativeTcp: Transport = {
  name: 'native TCP',
  listen: (o) => TransportServer.listen(o),
  connect: (o) => new TransportClient(o),
};
