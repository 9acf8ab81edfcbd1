/**
 * Limits of the RESP door, modelled on Redis's (proto-max-bulk-len,
 * PROTO_INLINE_MAX_SIZE, client-query-buffer-limit, the pre-auth limits of
 * Redis 7). Every byte a client can make us hold is bounded by one of these.
 */

export interface RespLimits {
  /** Connections held at once; one more is told `-ERR max number of clients reached` and closed. */
  readonly maxClients: number;
  /** Largest bulk string a client may send as an argument (Redis: proto-max-bulk-len). */
  readonly maxBulkBytes: number;
  /** Largest number of arguments in one command, the command name included. */
  readonly maxArgs: number;
  /**
   * Bytes of one command held while it arrives: a command larger than this
   * closes the connection. Pipelines are not limited by it: past 1 MiB of
   * unparsed input the socket is paused while commands run (TCP pushes back
   * on the client), see connection.ts.
   */
  readonly maxQueryBufferBytes: number;
  /** Largest value GET, GETRANGE or MGET answers in one reply; larger GETs are told to use GETRANGE. */
  readonly maxGetBytes: number;
  /** A connection with no command running and nothing received for this long is closed. 0: never. */
  readonly idleTimeoutMs: number;
}

/** Redis's PROTO_INLINE_MAX_SIZE: an inline command (or a header line) longer than this is refused. */
export const MAX_INLINE_BYTES = 64 * 1024;
/** Before AUTH succeeds, Redis 7 allows at most 10 arguments and 16 KiB bulks per command. */
export const PREAUTH_MAX_ARGS = 10;
export const PREAUTH_MAX_BULK_BYTES = 16 * 1024;

export const DEFAULT_LIMITS: RespLimits = {
  maxClients: 10_000,
  maxBulkBytes: 512 * 2 ** 20,
  maxArgs: 4096,
  maxQueryBufferBytes: 8 * 2 ** 20,
  maxGetBytes: 512 * 2 ** 20,
  idleTimeoutMs: 300_000,
};
