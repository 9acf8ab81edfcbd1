/**
 * Limits of the HTTP door (the `http.*` keys of docs/configuration.md, with
 * the same defaults). Every connection, request and byte a client can make
 * the node hold is bounded by one of these; docs/http-api.md ("Connections
 * and limits") states the rules they drive, for the native door to match.
 */

export interface HttpLimits {
  /** Open connections at most (http.maxConnections). */
  readonly maxConnections: number;
  /** Connections from one client address (an IPv6 /64) at most; null: no limit. */
  readonly maxConnectionsPerAddress: number | null;
  /** Slots only connections that presented a valid token may hold (auth on only); null: maxConnections / 16. */
  readonly reservedConnections: number | null;
  /** Accept → complete head of the first request (TLS handshake included); also an unauthenticated connection's keep-alive idle time. */
  readonly firstRequestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  readonly idleTimeoutMs: number;
  /** Head of a later request on a kept-alive connection, from its first byte. */
  readonly headersTimeoutMs: number;
  /** Requests received on one connection and not yet answered. */
  readonly maxPipelined: number;
  /** Bytes all responses may reserve at once (read-ahead windows and socket buffers). */
  readonly maxInFlightBytes: number;
  /** Of maxInFlightBytes, what responses whose client stopped reading may hold. */
  readonly maxSlowClientBytes: number;
  /** A response whose write has waited this long for the client to take its buffered bytes counts as slow. */
  readonly slowClientAfterMs: number;
  /** A response waits at most this long for room in maxInFlightBytes, then 503 OVERLOADED. */
  readonly queueTimeoutMs: number;
  /** A rendered /metrics page is reused this long; 0: every scrape renders. */
  readonly metricsCacheMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 4096,
  maxConnectionsPerAddress: 256,
  reservedConnections: null,
  firstRequestTimeoutMs: 10_000,
  idleTimeoutMs: 65_000,
  headersTimeoutMs: 30_000,
  maxPipelined: 16,
  maxInFlightBytes: 512 * 2 ** 20,
  maxSlowClientBytes: 128 * 2 ** 20,
  slowClientAfterMs: 2_000,
  queueTimeoutMs: 10_000,
  metricsCacheMs: 1_000,
};

/** The reserve in force: none without auth, else the configured one or maxConnections / 16. */
export function reserveOf(l: HttpLimits, authRequired: boolean): number {
  if (!authRequired) return 0;
  return l.reservedConnections ?? Math.floor(l.maxConnections / 16);
}
