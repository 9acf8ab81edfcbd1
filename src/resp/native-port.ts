/**
 * One connection of the native RESP door as connection.ts sees it: a
 * RespSocket whose bytes the I/O thread writes, and a CommandInput whose
 * commands the I/O thread parsed (socket.ts). native-server.ts routes the
 * door's events here.
 *
 * Replies: what a tick wrote is handed to the thread in one call (pieces of
 * 16 KiB and more are pinned, smaller ones copied) and counted in
 * writableLength until the thread reports the kernel took it; past
 * HIGH_WATER_BYTES write() returns false and 'drain' follows once the thread
 * caught up, so reply.ts paces a slow reader exactly as on a net.Socket.
 * Reports ride on the connection's next command (no event of their own),
 * come at once while a write waits for 'drain', and otherwise within the
 * thread's 50 ms tick. Write callbacks (reply memory shares,
 * reply-memory.ts) run once their bytes are reported written.
 *
 * Input: the thread posts at most its pipeline bound of commands ahead; each
 * write (or settle()) carries how many finished since the last, which lets it
 * read on, and whether AUTH succeeded, which lifts the parser's pre-auth limits
 * — with the token's grant, which the thread's fast path checks (GET,
 * GETRANGE, STRLEN and EXISTS answered from the native store, never posted
 * here; addon/src/resp/fastpath.h). The grant rides in the same send as the
 * count that finishes AUTH, so no command after AUTH is answered there under
 * the grant before it. Commands the thread answered are reported like bytes
 * written and count as activity (the idle timeout).
 */

import { EventEmitter } from 'node:events';
import type { Grant } from '../auth/tokens.js';
import { ProtocolError } from './protocol-error.js';
import type { CommandInput, RespSocket } from './socket.js';

/** Reply bytes queued on the I/O thread past which write() asks the connection to wait for 'drain'. */
export const HIGH_WATER_BYTES = 256 * 1024;

const END = 1;
const DESTROY = 2;
const AUTHENTICATED = 4;
const WANT_WRITTEN = 8;
const GRANT_ALL = 16;
const GRANT_LIST = 32;

type Item = { args: Buffer[] } | { error: ProtocolError };

/** The door's send function (native-door.ts), bound to one door. */
export type SendFn = (
  conn: number,
  pieces: Uint8Array[],
  done: number,
  flags: number,
  grant: string[] | null,
) => void;

/** What CommandInput.start gets from the connection (socket.ts), with its session's grant. */
type Hooks = {
  arrived: () => void;
  closing: () => boolean;
  authenticated: () => boolean;
  grant?: () => Grant | null;
};

export class NativePort extends EventEmitter implements RespSocket, CommandInput {
  readonly remoteAddress: string;
  readonly remotePort: number;
  destroyed = false;
  writableEnded = false;
  writableLength = 0;

  private readonly queue: Item[] = [];
  private head = 0;
  private handedOut = false;
  private done = 0;
  private toldAuthenticated = false;
  private toldGrant: Grant | null = null;
  private needDrain = false;
  private written = 0;
  private issued = 0;
  private readonly callbacks: { end: number; cb: (err?: Error | null) => void }[] = [];
  private hooks: Hooks | null = null;
  /** Written this tick and not yet handed to the thread: one call per tick, however many writes. */
  private pending: Uint8Array[] = [];
  private flushScheduled = false;

  constructor(
    readonly conn: number,
    peer: string,
    private readonly send: SendFn,
  ) {
    super();
    const colon = peer.lastIndexOf(':');
    this.remoteAddress = peer.slice(0, colon);
    this.remotePort = Number(peer.slice(colon + 1));
  }

  // ---- CommandInput --------------------------------------------------------------------------
  start(o: Hooks): void {
    this.hooks = o;
    if (this.head < this.queue.length) o.arrived();
  }

  next(): Buffer[] | null {
    if (this.handedOut) {
      this.handedOut = false;
      this.done++;
    }
    if (this.head >= this.queue.length) return null;
    const item = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Item;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    if ('error' in item) throw item.error;
    this.handedOut = true;
    return item.args;
  }

  settle(): void {
    if (this.destroyed) return;
    if (this.done > 0 || this.authChanged()) this.flushSoon();
  }

  discard(): void {
    // The I/O thread reads and drops input itself once the connection ends.
  }

  // ---- events from the door (native-server.ts) ----------------------------------------------
  onCommand(args: Buffer[]): void {
    if (this.hooks?.closing()) return;
    this.queue.push({ args });
    this.hooks?.arrived();
  }

  onProtocolError(reason: string, message: string): void {
    if (this.hooks?.closing()) return;
    this.queue.push({ error: new ProtocolError(reason, message) });
    this.hooks?.arrived();
  }

  onWritten(bytes: number, served = 0): void {
    // Commands the thread answered: the client is active (connection.ts refreshes its idle timer).
    if (served > 0 && !this.hooks?.closing()) this.hooks?.arrived();
    this.written += bytes;
    this.writableLength = this.issued - this.written;
    while (this.callbacks.length > 0 && this.callbacks[0]!.end <= this.written) this.callbacks.shift()!.cb();
    if (this.needDrain && this.writableLength < HIGH_WATER_BYTES) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  onClosed(): void {
    this.closed();
  }

  // ---- RespSocket ---------------------------------------------------------------------------
  write(data: Buffer, cb?: (err?: Error | null) => void): boolean {
    if (this.destroyed || this.writableEnded) return false;
    this.issued += data.length;
    this.writableLength = this.issued - this.written;
    if (cb) this.callbacks.push({ end: this.issued, cb });
    this.pending.push(data);
    this.flushSoon();
    if (this.writableLength >= HIGH_WATER_BYTES) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  end(data?: string): this {
    if (this.destroyed || this.writableEnded) return this;
    this.writableEnded = true;
    if (data) {
      this.pending.push(Buffer.from(data));
      this.issued += Buffer.byteLength(data);
    }
    this.flush(END);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.pending = [];
    this.send(this.conn, [], this.takeDone(), DESTROY, null);
    this.closed();
    return this;
  }

  private closeEmitted = false;

  private closed(): void {
    this.destroyed = true;
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.callbacks.length = 0;
    // As node's sockets do: 'close' comes asynchronously, after the call that closed.
    process.nextTick(() => this.emit('close', false));
  }

  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush(0));
  }

  /** Hands what was written since the last call to the thread, with the finished-command count. */
  private flush(base: number): void {
    this.flushScheduled = false;
    if (this.destroyed || (this.writableEnded && base === 0)) return;
    const pieces = this.pending;
    this.pending = [];
    const done = this.takeDone();
    // A writer waits for 'drain': the thread reports progress at once instead of lazily.
    let flags = this.flags(base) | (this.needDrain ? WANT_WRITTEN : 0);
    let grant: string[] | null = null;
    const g = this.grantChanged();
    if (g) {
      this.toldGrant = g;
      if (g.admin || g.containers === null) flags |= GRANT_ALL;
      else {
        flags |= GRANT_LIST;
        grant = [...g.containers];
      }
    }
    if (pieces.length > 0 || done > 0 || flags !== 0) this.send(this.conn, pieces, done, flags, grant);
  }

  private takeDone(): number {
    const d = this.done;
    this.done = 0;
    return d;
  }

  private authChanged(): boolean {
    return (
      (!this.toldAuthenticated && (this.hooks?.authenticated() ?? false)) || this.grantChanged() !== null
    );
  }

  /** The session's grant when it is not the one the thread was told (AUTH with another token), else null. */
  private grantChanged(): Grant | null {
    const g = this.hooks?.grant?.() ?? null;
    return g !== null && g !== this.toldGrant ? g : null;
  }

  private flags(base: number): number {
    if (this.authChanged()) {
      this.toldAuthenticated = true;
      return base | AUTHENTICATED;
    }
    return base;
  }
}
