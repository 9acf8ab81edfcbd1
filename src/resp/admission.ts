/**
 * Who gets a connection slot, and for how long a stranger keeps one
 * (docs/resp.md, "Connections"). With auth on, a connection is a stranger
 * until AUTH succeeds; strangers are bounded overall and per client address,
 * must authenticate within preAuthTimeoutMs, and are the ones closed to make
 * room — oldest first — so that idle strangers can never keep a client with a
 * token out. Only when authenticated clients hold every slot is a new
 * connection refused. With auth off every connection is authenticated from its
 * first byte: only maxClients applies.
 */
import { isIPv4 } from 'node:net';
import { type RespLimits, unauthenticatedLimit } from './limits.js';
import type { RespMetrics } from './metrics.js';

/** Why a slot was taken back (the `reason` label of rejected_connections_total). */
export type EvictReason = 'preauth_timeout' | 'preauth_evicted';

/** One admitted connection's slot. */
export class Ticket {
  /** Set by the owner of the socket: closes it, telling the client `message` if it can. */
  onEvict: (message: string) => void = () => {};
  private stranger: boolean;
  private released = false;
  timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly admission: Admission,
    readonly address: string,
    stranger: boolean,
  ) {
    this.stranger = stranger;
  }

  get isStranger(): boolean {
    return this.stranger;
  }

  /** AUTH succeeded: the connection now holds a slot strangers cannot take. */
  authenticated(): void {
    if (!this.stranger || this.released) return;
    this.stranger = false;
    this.admission.welcome(this);
  }

  /** The socket closed: frees the slot (idempotent). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.admission.forget(this, this.stranger);
    this.stranger = false;
  }
}

export class Admission {
  private total = 0;
  /** Strangers, oldest first (a Set keeps insertion order). */
  private readonly strangers = new Set<Ticket>();
  /** Strangers by address key, oldest first; as many entries as strangers at most. */
  private readonly byAddress = new Map<string, Set<Ticket>>();
  private readonly maxStrangers: number;

  constructor(
    private readonly limits: RespLimits,
    private readonly authRequired: boolean,
    private readonly metrics: RespMetrics,
  ) {
    this.maxStrangers = unauthenticatedLimit(limits);
  }

  get connections(): number {
    return this.total;
  }

  /**
   * A slot for a new connection from `remoteAddress`, closing the oldest
   * stranger (of that address first) where a limit is reached; null when
   * authenticated clients hold every slot.
   */
  admit(remoteAddress: string | undefined): Ticket | null {
    const key = addressKey(remoteAddress ?? '');
    if (this.authRequired) {
      const same = this.byAddress.get(key);
      if (same && same.size >= this.limits.maxUnauthenticatedPerAddress) {
        this.evict(
          first(same),
          `${same.size} connections from ${key} are waiting to authenticate (resp.maxUnauthenticatedPerAddress)`,
        );
      }
      if (this.strangers.size >= this.maxStrangers) {
        this.evict(
          first(this.strangers),
          `${this.strangers.size} connections are waiting to authenticate (resp.maxUnauthenticated)`,
        );
      }
    }
    if (this.total >= this.limits.maxClients) {
      if (this.strangers.size === 0) return null;
      this.evict(
        first(this.strangers),
        `all ${this.limits.maxClients} connections are in use (resp.maxClients)`,
      );
    }
    const t = new Ticket(this, key, this.authRequired);
    this.total++;
    if (this.authRequired) {
      this.strangers.add(t);
      const same = this.byAddress.get(key) ?? new Set<Ticket>();
      this.byAddress.set(key, same.add(t));
      const ms = this.limits.preAuthTimeoutMs;
      t.timer = setTimeout(() => {
        this.metrics.rejectedConnections.inc({ reason: 'preauth_timeout' });
        t.release();
        t.onEvict(`authentication timeout: no AUTH within ${ms} ms (resp.preAuthTimeout)`);
      }, ms);
      t.timer.unref();
    }
    return t;
  }

  /** @internal Ticket.authenticated */
  welcome(t: Ticket): void {
    this.leave(t);
  }

  /** @internal Ticket.release */
  forget(t: Ticket, stranger: boolean): void {
    this.total--;
    if (stranger) this.leave(t);
  }

  private leave(t: Ticket): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    this.strangers.delete(t);
    const same = this.byAddress.get(t.address);
    if (same?.delete(t) && same.size === 0) this.byAddress.delete(t.address);
  }

  private evict(t: Ticket, why: string): void {
    this.metrics.rejectedConnections.inc({ reason: 'preauth_evicted' });
    t.release();
    t.onEvict(`closed before AUTH to make room: ${why}`);
  }
}

function first<T>(s: Set<T>): T {
  return s.values().next().value as T;
}

/**
 * The key the per-address limits count by: an IPv4 address (also when it
 * arrives IPv4-mapped on a dual-stack socket), or an IPv6 address's /64 —
 * one host usually has a whole /64 to pick source addresses from.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIPv4(ip) || !ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
