/**
 * Who may hold a connection to the HTTP door, and how much one connection
 * may ask for at once (docs/http-api.md, "Connections and limits"; the
 * native door must match these rules):
 *
 *   - at most `maxConnections` open; at the cap a newcomer takes the place of
 *     the connection idle longest (unauthenticated ones first, as nginx
 *     reuses idle keep-alive connections), or is refused when none is idle;
 *   - at most `maxPerAddress` from one client address (an IPv6 /64 counts as
 *     one address); more are refused;
 *   - with auth on, connections that have not yet presented a valid token
 *     hold at most `maxConnections - reserved`; past that a newcomer takes
 *     the place of the unauthenticated one idle longest, or is refused. With
 *     auth off nothing can prove itself, so there is no reserve;
 *   - a connection must deliver its first request head within
 *     `firstRequestTimeoutMs` of being accepted (TLS handshake included),
 *     else 408 and close; with auth on, an unauthenticated connection's
 *     keep-alive idle time is that short too;
 *   - requests on one connection are handled one after another, in order
 *     (HTTP/1.1 answers them in order anyway); at most `maxPipelined` may be
 *     received and unanswered: at the bound the socket is no longer read
 *     (TCP pushes back on the client), and a client that sent more in one
 *     go than the bound is disconnected.
 *
 * "Idle" means no request is being handled: a connection between requests,
 * before its first request, or trickling a request head.
 * Refusals answer 503 OVERLOADED (plain HTTP; a TLS listener just closes).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isIPv6, type Socket } from 'node:net';
import type { ErrorCode } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { HttpConnectionMetrics } from './connection-metrics.js';
import { rawErrorResponse } from './errors.js';

export interface ConnectionLimits {
  readonly maxConnections: number;
  /** null: no per-address limit. */
  readonly maxPerAddress: number | null;
  /** Slots only authenticated connections may use (ignored when !authRequired). */
  readonly reserved: number;
  readonly firstRequestTimeoutMs: number;
  readonly maxPipelined: number;
  /** Auth is on: connections start unauthenticated and prove themselves with a token. */
  readonly authRequired: boolean;
  /** Every connection is trusted from the start (a local unix socket). */
  readonly trusted?: boolean;
}

export type CloseReason =
  | 'max_connections'
  | 'per_address'
  | 'reserve'
  | 'idle_evicted'
  | 'first_request_timeout'
  | 'pipeline_limit'
  | 'slow_client';

class Conn {
  /** The socket the HTTP parser reads (the TLS socket on an HTTPS listener). */
  http: Socket;
  authenticated: boolean;
  requests = 0;
  /** Received and not yet answered (the one being handled included). */
  unanswered = 0;
  running = false;
  readonly waiting: Array<() => void> = [];
  /** Reading stopped at the pipelining bound. */
  held = false;
  closing = false;
  firstTimer: NodeJS.Timeout | undefined;
  /** Takes the connection out of every count; idempotent (raw and TLS sockets both call it). */
  forget: () => void = () => {};

  constructor(
    readonly raw: Socket,
    readonly address: string | null,
    authenticated: boolean,
  ) {
    this.http = raw;
    this.authenticated = authenticated;
  }
}

/** Sockets being closed that node may still count (see the constructor). */
const CLOSING_HEADROOM = 256;

const byHttpSocket = new WeakMap<Socket, { conn: Conn; governor: ConnectionGovernor }>();

/**
 * A connection another door governs (the native door's, whose I/O threads
 * keep the counts): how this module's rules reach it.
 */
export interface GovernedElsewhere {
  authenticate(): void;
  close(reason: CloseReason): void;
}

const elsewhere = new WeakMap<object, GovernedElsewhere>();

/** Registers the socket object node's HTTP objects see for a connection another door governs. */
export function governedElsewhere(socket: object, hooks: GovernedElsewhere): void {
  elsewhere.set(socket, hooks);
}

/** A connection presented a valid token: it leaves the unauthenticated pool. */
export function markAuthenticated(socket: Socket): void {
  const e = byHttpSocket.get(socket);
  if (e) {
    if (!e.conn.authenticated) e.governor.authenticate(e.conn);
    return;
  }
  elsewhere.get(socket)?.authenticate();
}

/** Closes the connection a response is sent on, counting why (the send budget's slow-client eviction). */
export function closeConnection(socket: Socket, reason: CloseReason): void {
  const e = byHttpSocket.get(socket);
  if (e) e.governor.close(e.conn, reason);
  else {
    const o = elsewhere.get(socket);
    if (o) o.close(reason);
    else socket.destroy();
  }
}

export class ConnectionGovernor {
  private readonly all = new Set<Conn>();
  /** Idle connections in the order they became idle (Set keeps insertion order). */
  private readonly idleUnauth = new Set<Conn>();
  private readonly idleAuth = new Set<Conn>();
  private readonly perAddress = new Map<string, number>();
  private unauthenticated = 0;
  /** TLS: the raw socket's connection, until its TLS socket is known. */
  private readonly handshaking = new Map<string, Conn>();
  private readonly m: HttpConnectionMetrics;

  constructor(
    server: Server,
    private readonly limits: ConnectionLimits,
    metrics: Metrics,
    private readonly log: Logger,
    private readonly tls: boolean,
  ) {
    this.m = HttpConnectionMetrics.of(metrics);
    // node drops connections past its own count silently, and a socket we destroy stays in that
    // count until its 'close' event: headroom, so that the newcomer is seen here and can take an
    // idle connection's place (this governor enforces maxConnections).
    server.maxConnections = limits.maxConnections + CLOSING_HEADROOM;
    server.on('connection', (s: Socket) => this.accept(s));
    if (tls) server.on('secureConnection', (s: Socket) => this.secured(s));
  }

  get size(): number {
    return this.all.size;
  }

  /**
   * Runs `handle` for a request when its turn on the connection comes: one
   * at a time per connection, in order. Returns without running it when the
   * connection is being closed.
   */
  dispatch(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
    const conn = byHttpSocket.get(req.socket)?.conn;
    if (!conn) {
      handle(); // not accepted through this governor (cannot happen on our servers)
      return;
    }
    if (conn.closing) return; // refused or cut: its socket is going away, nothing is answered
    if (conn.requests++ === 0) clearTimeout(conn.firstTimer);
    conn.unanswered++;
    this.busy(conn);
    if (conn.unanswered > this.limits.maxPipelined) {
      this.close(conn, 'pipeline_limit');
      return;
    }
    if (conn.unanswered >= this.limits.maxPipelined) this.hold(conn);
    res.once('close', () => {
      conn.unanswered--;
      conn.running = false;
      if (conn.closing || conn.http.destroyed) {
        // The requests waiting behind this one will never have a socket to answer on.
        conn.waiting.length = 0;
        return;
      }
      if (conn.held && conn.unanswered < this.limits.maxPipelined) this.release(conn);
      const next = conn.waiting.shift();
      if (next) {
        conn.running = true;
        next();
      } else if (conn.unanswered === 0 && !conn.closing) {
        this.idle(conn);
      }
    });
    if (conn.running) {
      conn.waiting.push(handle);
    } else {
      conn.running = true;
      handle();
    }
  }

  authenticate(conn: Conn): void {
    conn.authenticated = true;
    this.unauthenticated--;
    if (this.idleUnauth.delete(conn)) this.idleAuth.add(conn);
  }

  close(conn: Conn, reason: CloseReason): void {
    if (conn.closing) return;
    conn.closing = true;
    conn.waiting.length = 0;
    this.m.closed.inc({ reason });
    this.log.debug({ address: conn.address, reason }, 'http: connection closed by the server');
    conn.http.destroy();
    conn.raw.destroy();
  }

  private accept(socket: Socket): void {
    const l = this.limits;
    const address = socket.remoteAddress ? addressKey(socket.remoteAddress) : null;
    if (
      address !== null &&
      l.maxPerAddress !== null &&
      (this.perAddress.get(address) ?? 0) >= l.maxPerAddress
    ) {
      this.refuse(
        socket,
        'per_address',
        `too many connections from ${address} (http.maxConnectionsPerAddress: ${l.maxPerAddress})`,
      );
      return;
    }
    const trusted = l.trusted === true || !l.authRequired;
    if (this.all.size >= l.maxConnections) {
      const victim = first(this.idleUnauth) ?? first(this.idleAuth);
      if (!victim) {
        this.refuse(
          socket,
          'max_connections',
          `the server holds http.maxConnections (${l.maxConnections}) busy connections`,
        );
        return;
      }
      this.close(victim, 'idle_evicted');
    } else if (!trusted && this.unauthenticated >= l.maxConnections - l.reserved) {
      const victim = first(this.idleUnauth);
      if (!victim) {
        this.refuse(
          socket,
          'reserve',
          `unauthenticated connections hold every slot but the http.reservedConnections (${l.reserved})`,
        );
        return;
      }
      this.close(victim, 'idle_evicted');
    }
    const conn = new Conn(socket, address, trusted);
    this.all.add(conn);
    if (address !== null) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    if (!trusted) this.unauthenticated++;
    this.idle(conn);
    this.m.open.inc();
    byHttpSocket.set(socket, { conn, governor: this });
    const key = this.tls ? `${socket.remoteAddress}|${socket.remotePort}` : '';
    if (this.tls) this.handshaking.set(key, conn);
    conn.firstTimer = setTimeout(() => this.firstRequestLate(conn), l.firstRequestTimeoutMs);
    conn.firstTimer.unref();
    conn.forget = () => {
      clearTimeout(conn.firstTimer);
      conn.waiting.length = 0;
      if (this.tls) this.handshaking.delete(key);
      if (!this.all.delete(conn)) return;
      this.idleUnauth.delete(conn);
      this.idleAuth.delete(conn);
      if (address !== null) {
        const n = (this.perAddress.get(address) ?? 1) - 1;
        if (n === 0) this.perAddress.delete(address);
        else this.perAddress.set(address, n);
      }
      if (!conn.authenticated) this.unauthenticated--;
      this.m.open.dec();
    };
    socket.once('close', conn.forget);
    this.watchIdle(conn, socket);
  }

  /** node closes a socket whose timeout fired; count the ones the unauthenticated idle limit closed. */
  private watchIdle(conn: Conn, socket: Socket): void {
    socket.on('timeout', () => {
      if (!conn.authenticated && conn.unanswered === 0 && !conn.closing) {
        conn.closing = true;
        this.m.closed.inc({ reason: 'first_request_timeout' });
      }
    });
  }

  private secured(tlsSocket: Socket): void {
    const key = `${tlsSocket.remoteAddress}|${tlsSocket.remotePort}`;
    const conn = this.handshaking.get(key);
    if (!conn) return;
    this.handshaking.delete(key);
    conn.http = tlsSocket;
    byHttpSocket.set(tlsSocket, { conn, governor: this });
    tlsSocket.once('close', conn.forget);
    this.watchIdle(conn, tlsSocket);
  }

  private firstRequestLate(conn: Conn): void {
    if (conn.requests > 0 || conn.closing) return;
    // A plain socket (or an established TLS one) gets a 408 it can read; a TLS handshake that never finished just closes.
    const readable = !this.tls || conn.http !== conn.raw;
    if (readable && conn.http.writable) {
      conn.closing = true;
      this.m.closed.inc({ reason: 'first_request_timeout' });
      conn.http.end(
        rawErrorResponse(
          'REQUEST_TIMEOUT',
          `no complete request head within http.firstRequestTimeout (${this.limits.firstRequestTimeoutMs} ms)`,
        ),
      );
      setTimeout(() => conn.raw.destroy(), 1000).unref();
      return;
    }
    this.close(conn, 'first_request_timeout');
  }

  private refuse(socket: Socket, reason: CloseReason, message: string): void {
    this.m.closed.inc({ reason });
    this.log.debug({ address: socket.remoteAddress, reason }, 'http: connection refused');
    // The HTTP server already attached its parser: a request it parses now is ignored (dispatch sees closing).
    byHttpSocket.set(socket, {
      conn: Object.assign(new Conn(socket, null, true), { closing: true }),
      governor: this,
    });
    socket.on('error', () => {});
    if (this.tls) {
      socket.destroy();
      return;
    }
    const code: ErrorCode = 'OVERLOADED';
    socket.end(rawErrorResponse(code, message));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private busy(conn: Conn): void {
    this.idleUnauth.delete(conn);
    this.idleAuth.delete(conn);
  }

  private idle(conn: Conn): void {
    (conn.authenticated ? this.idleAuth : this.idleUnauth).add(conn);
    // An unauthenticated keep-alive connection may idle only as long as a newcomer may wait for its first request.
    if (!conn.authenticated && conn.requests > 0) conn.http.setTimeout(this.limits.firstRequestTimeoutMs);
  }

  /** Stops reading the connection: TCP flow control now holds the client's further requests. */
  private hold(conn: Conn): void {
    if (conn.held) return;
    conn.held = true;
    conn.http.pause();
    // node's HTTP server resumes a socket when it consumes a request body; pause it again at once.
    conn.http.on('resume', this.rehold);
  }

  private release(conn: Conn): void {
    conn.held = false;
    conn.http.off('resume', this.rehold);
    conn.http.resume();
  }

  private readonly rehold = function (this: Socket) {
    this.pause();
  };
}

function first<T>(s: Set<T>): T | undefined {
  for (const v of s) return v;
  return undefined;
}

/** The address a per-address limit counts: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(address: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
