/** The transport's public surface (docs/wire-protocol.md). */
export { type RequestOptions, TransportClient, type TransportClientOptions } from './client.js';
export type { TransportLogger } from './logger.js';
export {
  type Caller,
  type CallOptions,
  type MessageHandler,
  Messages,
  type Reply,
  type RequestChannel,
  type Response,
} from './rpc.js';
export {
  type ChunkPayload,
  type TransportHandler,
  TransportServer,
  type TransportServerOptions,
} from './server.js';
export { nativeTcp, type Transport, type TransportListener, type TransportPeer } from './transport.js';
