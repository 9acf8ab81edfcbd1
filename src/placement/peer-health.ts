/**
 * Failed-peer backoff. A peer that failed a read is skipped for a while so
 * every chunk it owns does not pay a connect timeout; its chunks go to the
 * next member in rank, then the origin. Each consecutive failure doubles the
 * wait (capped), so a dead peer costs one probe per backoff period, and one
 * success forgets the history. There is no probing thread: once the backoff
 * ends the next real read is the probe. Another member's report that a peer
 * is down (a stand-in request) counts as a failure observed here (reported()).
 */
import type { Member } from './rendezvous.js';

interface State {
  failures: number;
  /** Skip until this time (ms, on the injected clock). */
  until: number;
}

export interface PeerHealthOptions {
  /** Wait after the first failure, ms (cluster.peerBackoff). */
  backoffMs: number;
  /** Cap on the doubled wait, ms; default max(backoffMs, 60 s) (cluster.peerBackoffMax). */
  maxBackoffMs?: number;
  /** Clock in ms; monotonic by default so wall-clock steps do not end or extend a backoff. */
  now?: () => number;
}

// Addresses come from membership (≤ 1024), but failed() takes any string: bound the table.
const MAX_PEERS = 4096;

export class PeerHealth {
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #now: () => number;
  readonly #peers = new Map<string, State>();

  constructor(opts: PeerHealthOptions) {
    if (!(opts.backoffMs >= 0) || !Number.isFinite(opts.backoffMs)) {
      throw new RangeError(`backoffMs must be a finite number >= 0, got ${opts.backoffMs}`);
    }
    const max = opts.maxBackoffMs ?? Math.max(opts.backoffMs, 60_000);
    if (!(max >= opts.backoffMs) || !Number.isFinite(max)) {
      throw new RangeError(`maxBackoffMs must be finite and >= backoffMs (${opts.backoffMs}), got ${max}`);
    }
    this.#backoffMs = opts.backoffMs;
    this.#maxBackoffMs = max;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** False while `address` is in backoff after a failure. */
  available(address: string): boolean {
    const s = this.#peers.get(address);
    return !s || this.#now() >= s.until;
  }

  /** Records a failure: the peer is skipped for backoffMs · 2^(consecutive failures − 1), capped. */
  failed(address: string): void {
    const s = this.#peers.get(address) ?? { failures: 0, until: 0 };
    s.failures = Math.min(s.failures + 1, 64);
    const wait = Math.min(this.#backoffMs * 2 ** (s.failures - 1), this.#maxBackoffMs);
    s.until = this.#now() + wait;
    // Re-insert so Map order is "least recently failed first" for eviction.
    this.#peers.delete(address);
    this.#peers.set(address, s);
    if (this.#peers.size > MAX_PEERS) this.#evict();
  }

  /**
   * Records that another member reported `address` down (a stand-in request,
   * docs/cluster.md). It counts as one failure observed here, but only when the
   * peer is not already in backoff: many readers reporting the same dead peer
   * cost what one failed read of our own costs, not a backoff doubled per report.
   */
  reported(address: string): void {
    if (this.available(address)) this.failed(address);
  }

  /** Records a success: the peer is available again and its next failure starts at backoffMs. */
  succeeded(address: string): void {
    this.#peers.delete(address);
  }

  /** Wait left for `address` in ms (0 when available); for status pages and logs. */
  backoffLeftMs(address: string): number {
    const s = this.#peers.get(address);
    return s ? Math.max(0, s.until - this.#now()) : 0;
  }

  #evict(): void {
    const now = this.#now();
    for (const [a, s] of this.#peers) if (now >= s.until) this.#peers.delete(a);
    for (const a of this.#peers.keys()) {
      if (this.#peers.size <= MAX_PEERS) break;
      this.#peers.delete(a);
    }
  }
}

/**
 * The members to try for a chunk, in rank order: without `self` (its own
 * tiers were already asked) and without peers in backoff. If every peer is in
 * backoff they are all returned, still in rank order: trying a peer that may
 * have recovered beats failing the read or sending everything to the origin.
 */
export function usable(ranked: readonly Member[], health: PeerHealth, self?: string): Member[] {
  const peers = self === undefined ? [...ranked] : ranked.filter((m) => m.address !== self);
  const up = peers.filter((m) => health.available(m.address));
  return up.length > 0 ? up : peers;
}
