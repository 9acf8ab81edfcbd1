/**
 * The native RESP door's part of the addon (addon/src/resp/): its request
 * parser and its I/O threads. Loaded through src/transport/binding.ts.
 */

export interface RespDoorBinding {
  // The native RESP request parser (addon/src/resp/parser.h), for tests.
  /**
   * Parses the stream delivered as `chunks`, taking every whole command after each chunk, as a
   * connection would; stops at the first error (the door answers it and closes).
   */
  respReplay(chunks: readonly Uint8Array[], options?: RespReplayOptions): RespReplayed;
}

export interface RespReplayOptions {
  maxArgs?: number;
  maxBulkBytes?: number;
  maxQueryBufferBytes?: number;
  /** False: the pre-auth limits apply (as before AUTH). Default true. */
  authenticated?: boolean;
}

export interface RespReplayed {
  commands: Buffer[][];
  /** The protocol error the connection would be closed with: the same as src/resp/request-parser.ts'. */
  error: { reason: string; message: string } | null;
  /** Bytes left unparsed (an incomplete command). */
  buffered: number;
}
