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
  /**
   * With auth on: a connection that has not authenticated this long after it
   * connected is closed (also the TLS handshake's limit, auth on or off).
   */
  readonly preAuthTimeoutMs: number;
  /**
   * With auth on: connections not yet authenticated held at once; one more
   * closes the oldest of them. The rest of maxClients is a reserve only
   * authenticated clients can hold. Null: a tenth of maxClients.
   */
  readonly maxUnauthenticated: number | null;
  /** With auth on: of those, from one client address (IPv6: one /64); one more closes that address's oldest. */
  readonly maxUnauthenticatedPerAddress: number;
  /**
   * Reply bytes the door may hold for clients at once (queued on sockets and
   * read ahead), all connections together; see reply-memory.ts.
   */
  readonly maxReplyMemory: number;
}

/** Redis's PROTO_INLINE_MAX_SIZE: an inline command (or a header line) longer than this is refused. */
export const MAX_INLINE_BYTES = 64 * 1024;
/** Before AUTH succeeds, Redis 7 allows at most 10 arguments and 16 KiB bulks per command. */
export const PREAUTH_MAX_ARGS = 10;
export const PREAUTH_MAX_BULK_BYTES = 16 * 1024;
/**
 * ...and we hold at most this much of a stranger's input: one command (AUTH,
 * HELLO are a few hundred bytes), and unparsed pipelined bytes before the
 * socket is paused until the commands before them have run.
 */
export const PREAUTH_QUERY_BYTES = 16 * 1024;

export const DEFAULT_LIMITS: RespLimits = {
  maxClients: 10_000,
  maxBulkBytes: 512 * 2 ** 20,
  maxArgs: 4096,
  maxQueryBufferBytes: 8 * 2 ** 20,
  maxGetBytes: 512 * 2 ** 20,
  idleTimeoutMs: 300_000,
  preAuthTimeoutMs: 10_000,
  maxUnauthenticated: null,
  maxUnauthenticatedPerAddress: 32,
  maxReplyMemory: 256 * 2 ** 20,
};

/** maxUnauthenticated as it applies: null means a tenth of maxClients (at least 1). */
export function unauthenticatedLimit(l: RespLimits): number {
  return Math.min(l.maxClients, l.maxUnauthenticated ?? Math.max(1, Math.ceil(l.maxClients / 10)));
}
