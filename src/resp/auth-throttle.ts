/**
 * AUTH failures slowed per client address, not only per connection
 * (docs/security.md, "RESP"): a guesser opening a new connection for every
 * attempt got 2,153 guesses/s past the per-connection delay. Each failure
 * locks its address for a spacing that doubles with the address's failures
 * (50 ms … 3.2 s). While locked, one attempt from the address waits for the
 * lock to end and the others are answered at once without being checked, so
 * the address gets one check per spacing — ~0.3/s at worst — however many
 * connections it opens. An address without recent failures is not slowed:
 * a pool of connections authenticating at once all go through.
 *
 * Bounded: at most MAX_ADDRESSES addresses are remembered (least recently
 * failed forgotten first), each for FORGET_MS after its last failure. An
 * IPv6 client counts by its /64 (admission.ts addressKey).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export const MAX_ADDRESSES = 10_000;
export const FORGET_MS = 60_000;
const BASE_MS = 50;
const MAX_SPACING_MS = 3_200;

interface Entry {
  failures: number;
  lastFailure: number;
  /** No token from this address is checked before then. */
  lockedUntil: number;
  /** An attempt is waiting for the lock to end. */
  waiting: boolean;
}

export class AuthThrottle {
  /** Map order is recency: a failure re-inserts its address at the end. */
  private readonly table = new Map<string, Entry>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = MAX_ADDRESSES,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /**
   * Waits until a token from `address` may be checked. Resolves false when
   * another attempt from it is already waiting: the caller answers without checking.
   */
  async turn(address: string, signal: AbortSignal): Promise<boolean> {
    const now = this.tryTurn(address);
    if (now !== null) return now;
    const e = this.live(address)!;
    e.waiting = true;
    try {
      await sleep(Math.max(0, e.lockedUntil - this.now()), undefined, { signal });
    } finally {
      e.waiting = false;
    }
    return true;
  }

  /**
   * turn() without waiting: true when a token from `address` may be checked
   * now, false when another attempt already waits (answer without checking),
   * null when this one must wait (call turn()). A caller that checks the
   * token in the same tick as a true answer records its failure before any
   * other attempt is let through — even when many AUTHs arrive in one batch
   * of events, as they do from the native door's I/O threads.
   */
  tryTurn(address: string): boolean | null {
    const e = this.live(address);
    if (!e || (this.now() >= e.lockedUntil && !e.waiting)) return true;
    if (e.waiting) return false;
    return null;
  }

  failed(address: string): void {
    const now = this.now();
    const e = this.live(address) ?? { failures: 0, lastFailure: now, lockedUntil: now, waiting: false };
    e.failures++;
    e.lastFailure = now;
    e.lockedUntil = now + spacing(e.failures);
    this.table.delete(address);
    this.table.set(address, e);
    if (this.table.size > this.maxAddresses) {
      this.table.delete(this.table.keys().next().value as string);
    }
  }

  /** Milliseconds until a token from `address` may be checked (0: now). */
  nextCheckIn(address: string): number {
    const e = this.live(address);
    return e ? Math.max(0, e.lockedUntil - this.now()) : 0;
  }

  private live(address: string): Entry | undefined {
    const e = this.table.get(address);
    if (e && this.now() - e.lastFailure > FORGET_MS) {
      this.table.delete(address);
      return undefined;
    }
    return e;
  }
}

/** How long the n-th failure locks its address: 50 ms doubling up to 3.2 s. */
function spacing(failures: number): number {
  return Math.min(BASE_MS * 2 ** (failures - 1), MAX_SPACING_MS);
}
