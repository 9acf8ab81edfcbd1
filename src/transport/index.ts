/** The native transport's public surface (docs/wire-protocol.md). */
export { type RequestOptions, TransportClient, type TransportClientOptions } from './client.js';
export type { TransportLogger } from './logger.js';
export {
  type ChunkPayload,
  type TransportHandler,
  TransportServer,
  type TransportServerOptions,
} from './server.js';
