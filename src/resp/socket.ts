/**
 * What a RESP connection (connection.ts) needs from the door under it, so the
 * same connection code — commands, replies, bounds, admission — runs on both
 * doors (`resp.door`):
 *
 * - `RespSocket`, the part of node's net.Socket that connection.ts and
 *   reply.ts use: a net.Socket is one (the JavaScript door); native-port.ts
 *   is the other (the native door's I/O threads write the bytes).
 * - `CommandInput`, where whole commands come from: SocketInput here parses
 *   a net.Socket's bytes with request-parser.ts; on the native door they
 *   arrive parsed by the I/O thread (addon/src/resp/parser.h, same limits and
 *   errors).
 */
import type { Socket } from 'node:net';
import type { Grant } from '../auth/tokens.js';
import { PREAUTH_QUERY_BYTES, type RespLimits } from './limits.js';
import { RequestParser } from './request-parser.js';

export interface RespSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** Reply bytes handed over and not yet taken by the kernel. */
  readonly writableLength: number;
  /** False once writableLength passed the high-water mark: wait for 'drain'. `cb` runs once the kernel took the bytes. */
  write(data: Buffer, cb?: (err?: Error | null) => void): boolean;
  /** Sends what is queued, then closes. */
  end(): unknown;
  /** Sends `data` after what is queued, then closes. */
  end(data: string): unknown;
  destroy(): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

export interface CommandInput {
  /**
   * Starts delivering: `arrived` runs whenever input arrived that may make a
   * command whole (not while `closing()`). `authenticated` says whether the
   * pre-auth limits are lifted.
   */
  start(o: {
    arrived: () => void;
    closing: () => boolean;
    authenticated: () => boolean;
    /** What the session's token may read (null before AUTH, or with auth off): the native door's fast path checks it. */
    grant?: () => Grant | null;
  }): void;
  /**
   * The next whole command, or null while none is. Throws ProtocolError on a
   * framing error or a broken limit. Calling it also says that the command it
   * handed out before has finished.
   */
  next(): Buffer[] | null;
  /** The connection ran every whole command: reading may go on. */
  settle(): void;
  /** The connection is closing: input is read and dropped. */
  discard(): void;
}

/**
 * Unparsed input past this pauses the socket while commands run (TCP then
 * slows the client); also what one join of the input buffer copies at most.
 */
export const PIPELINE_WINDOW_BYTES = 1024 * 1024;

/** The JavaScript door's input: a net.Socket's bytes through request-parser.ts. */
export class SocketInput implements CommandInput {
  private parser: RequestParser | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly limits: RespLimits,
  ) {}

  start(o: { arrived: () => void; closing: () => boolean; authenticated: () => boolean }): void {
    const parser = new RequestParser({ limits: this.limits, authenticated: o.authenticated });
    this.parser = parser;
    this.socket.on('data', (d: Buffer) => {
      if (o.closing()) return; // after a protocol error or QUIT: read and drop
      parser.feed(d);
      // Safe to pause: the connection consumes what it can next and then settles (resumes).
      // A stranger's pipeline gets a much smaller window: its commands wait for AUTH in its socket.
      const window = o.authenticated() ? PIPELINE_WINDOW_BYTES : PREAUTH_QUERY_BYTES;
      if (parser.buffered > window) this.socket.pause();
      o.arrived();
    });
  }

  next(): Buffer[] | null {
    return this.parser?.next() ?? null;
  }

  settle(): void {
    if (this.socket.isPaused()) this.socket.resume(); // only an incomplete command is left
  }

  discard(): void {
    this.socket.resume();
  }
}
