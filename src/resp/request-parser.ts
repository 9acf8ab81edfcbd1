/**
 * Client → server framing: multibulk (`*N\r\n` then N `$len\r\n<bytes>\r\n`)
 * and inline commands (a line not starting with '*').
 *
 * Why not redis-parser here: it has no limits (`*4294967296` throws out of
 * execute(), deep nesting overflows the stack, `$2000000000` buffers 2 GB,
 * inline commands and RESP3 type bytes are fatal), so a guard in front of it
 * would have to read every header to enforce ours — at which point it has
 * found the frame boundaries and redis-parser would only parse them again.
 * Clients only ever send flat arrays of bulk strings, so that guard *is* the
 * parser: this file. redis-parser stays the reference it is checked against:
 * test/resp/parser-differential.test.ts feeds both the same random pipelines
 * (within our limits), cut at random packet boundaries, and requires the same
 * commands. Replies (server → client) are written by reply.ts.
 *
 * Incremental and bounded: bytes are appended as they arrive, complete
 * arguments are cut out as soon as they are whole (so a slow multibulk is not
 * re-scanned), and every length is checked against the limits as soon as its
 * header line is read — before any of its bytes are awaited.
 */
import { splitInline } from './inline.js';
import {
  MAX_INLINE_BYTES,
  PREAUTH_MAX_ARGS,
  PREAUTH_MAX_BULK_BYTES,
  PREAUTH_QUERY_BYTES,
  type RespLimits,
} from './limits.js';
import { ProtocolError } from './protocol-error.js';

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

/** Longest digit string a length may have: 512 MiB and INT_MAX fit in 10. */
const MAX_LENGTH_DIGITS = 18;

export interface ParserOptions {
  readonly limits: Pick<RespLimits, 'maxBulkBytes' | 'maxArgs' | 'maxQueryBufferBytes'>;
  /** Whether the client has authenticated (or no auth is configured): lifts the pre-auth limits. */
  readonly authenticated: () => boolean;
}

export class RequestParser {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Received but not yet joined to buf: a large bulk is joined once, when whole, not per packet. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Arguments of the multibulk being read, or null between commands. */
  private args: Buffer[] | null = null;
  private argsLeft = 0;
  /** Bytes of the arguments already cut out for the current command: they count against the query buffer too. */
  private argBytes = 0;
  /** Length of the bulk whose header was read, -1 when a header is expected next. */
  private bulkLen = -1;

  constructor(private readonly o: ParserOptions) {}

  /** Bytes received and not yet handed out as commands. */
  get buffered(): number {
    return this.buf.length - this.pos + this.pendingBytes;
  }

  feed(data: Buffer): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
  }

  /** Joins what arrived to the unparsed tail (the parsed head is dropped, so buf never grows with a session). */
  private absorb(): void {
    if (this.pending.length === 0) return;
    const tail = this.buf.subarray(this.pos);
    this.buf =
      tail.length === 0 && this.pending.length === 1
        ? this.pending[0]!
        : Buffer.concat([tail, ...this.pending], tail.length + this.pendingBytes);
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * The next complete command, or null when more bytes are needed. Throws
   * ProtocolError on a framing error or when a limit is broken; the parser is
   * unusable after that (the connection closes).
   */
  next(): Buffer[] | null {
    // Waiting for the rest of a bulk whose length is known: nothing to parse yet. Not joining
    // here keeps receiving an N-byte bulk O(N) instead of one copy of everything per packet.
    if (this.args !== null && this.bulkLen >= 0 && this.buffered < this.bulkLen + 2) return this.needMore();
    this.absorb();
    for (;;) {
      if (this.args === null) {
        if (this.pos >= this.buf.length) return this.done();
        if (this.buf[this.pos] !== 0x2a /* '*' */) {
          const cmd = this.inline();
          if (cmd === null) return this.needMore();
          if (cmd.length === 0) continue; // an empty line is skipped, as Redis does
          return cmd;
        }
        const n = this.lengthLine('multibulk');
        if (n === null) return this.needMore();
        if (n > this.o.limits.maxArgs) {
          throw new ProtocolError(
            'too_many_args',
            `invalid multibulk length (${n} arguments; the limit is ${this.o.limits.maxArgs})`,
          );
        }
        if (!this.o.authenticated() && n > PREAUTH_MAX_ARGS) {
          throw new ProtocolError('preauth_args', 'unauthenticated multibulk length');
        }
        if (n <= 0) continue; // `*0` and `*-1` are no command, as in Redis
        this.args = [];
        this.argsLeft = n;
        this.argBytes = 0;
        this.bulkLen = -1;
      }
      while (this.argsLeft > 0) {
        if (this.bulkLen < 0) {
          if (this.pos >= this.buf.length) return this.needMore();
          const type = this.buf[this.pos]!;
          if (type !== 0x24 /* '$' */) {
            // Nested arrays and RESP3 types land here: clients send flat bulk strings only.
            const shown =
              type >= 0x21 && type <= 0x7e
                ? String.fromCharCode(type)
                : `\\x${type.toString(16).padStart(2, '0')}`;
            throw new ProtocolError('expected_bulk', `expected '$', got '${shown}'`);
          }
          const len = this.lengthLine('bulk');
          if (len === null) return this.needMore();
          if (len < 0 || len > this.o.limits.maxBulkBytes) {
            throw new ProtocolError('bulk_length', 'invalid bulk length');
          }
          if (!this.o.authenticated() && len > PREAUTH_MAX_BULK_BYTES) {
            throw new ProtocolError('preauth_bulk', 'unauthenticated bulk length');
          }
          this.bulkLen = len;
        }
        if (this.buf.length - this.pos < this.bulkLen + 2) return this.needMore();
        const end = this.pos + this.bulkLen;
        if (this.buf[end] !== CR || this.buf[end + 1] !== LF) {
          throw new ProtocolError('bulk_terminator', 'expected CRLF after bulk string');
        }
        // A copy: the argument must not pin the (possibly 64 KiB) read buffer it came in.
        this.args!.push(Buffer.from(this.buf.subarray(this.pos, end)));
        this.argBytes += this.bulkLen;
        this.pos = end + 2;
        this.bulkLen = -1;
        this.argsLeft--;
      }
      const cmd = this.args!;
      this.args = null;
      // Whole before it could be caught incomplete (one packet): a stranger's command is bounded all the same.
      if (!this.o.authenticated() && this.argBytes > PREAUTH_QUERY_BYTES) throw this.preauthTooBig();
      return cmd;
    }
  }

  private done(): null {
    this.buf = EMPTY;
    this.pos = 0;
    return this.needMore();
  }

  /** Out of bytes mid-command: a command that cannot fit the query buffer never will. */
  private needMore(): null {
    // Many arguments each under the limit must not add up past it: what was cut out counts.
    const held = this.buffered + (this.args === null ? 0 : this.argBytes);
    if (!this.o.authenticated() && held > PREAUTH_QUERY_BYTES) throw this.preauthTooBig();
    if (held > this.o.limits.maxQueryBufferBytes) {
      throw new ProtocolError(
        'query_buffer',
        `query buffer limit reached (${this.o.limits.maxQueryBufferBytes} bytes for one command)`,
      );
    }
    return null;
  }

  private preauthTooBig(): ProtocolError {
    return new ProtocolError(
      'preauth_query_buffer',
      `unauthenticated query buffer limit reached (${PREAUTH_QUERY_BYTES} bytes for one command before AUTH)`,
    );
  }

  /** Index of the next '\n' from pos, or -1; refuses lines past the inline limit (smaller before AUTH). */
  private lineEnd(what: string, reason: string): number {
    const max = this.o.authenticated() ? MAX_INLINE_BYTES : PREAUTH_QUERY_BYTES;
    const limit = Math.min(this.buf.length, this.pos + max + 2);
    const nl = this.buf.indexOf(LF, this.pos);
    if (nl >= 0 && nl < limit) return nl;
    if (this.buf.length - this.pos > max) throw new ProtocolError(reason, what);
    return -1;
  }

  private inline(): Buffer[] | null {
    const nl = this.lineEnd('too big inline request', 'inline_too_big');
    if (nl < 0) return null;
    const lineEnd = nl > this.pos && this.buf[nl - 1] === CR ? nl - 1 : nl;
    const args = splitInline(this.buf.subarray(this.pos, lineEnd));
    this.pos = nl + 1;
    if (args === null) throw new ProtocolError('unbalanced_quotes', 'unbalanced quotes in request');
    if (args.length > this.o.limits.maxArgs) {
      throw new ProtocolError(
        'too_many_args',
        `too many arguments (${args.length}; the limit is ${this.o.limits.maxArgs})`,
      );
    }
    if (!this.o.authenticated() && args.length > PREAUTH_MAX_ARGS) {
      throw new ProtocolError('preauth_args', 'unauthenticated multibulk length');
    }
    return args;
  }

  /** Reads `*N\r\n` or `$N\r\n` at pos; null until the whole line is there. */
  private lengthLine(kind: 'multibulk' | 'bulk'): number | null {
    const nl = this.lineEnd(
      `too big ${kind === 'multibulk' ? 'mbulk' : 'bulk'} count string`,
      `${kind}_header_too_big`,
    );
    if (nl < 0) return null;
    if (nl === this.pos || this.buf[nl - 1] !== CR) {
      throw new ProtocolError(`${kind}_header`, `invalid ${kind} length`);
    }
    const digits = this.buf.toString('latin1', this.pos + 1, nl - 1);
    this.pos = nl + 1;
    if (!/^-?\d+$/.test(digits) || digits.length > MAX_LENGTH_DIGITS) {
      throw new ProtocolError(`${kind}_length`, `invalid ${kind} length`);
    }
    const n = Number(digits);
    // Redis refuses multibulk counts past INT_MAX; ours are far lower (maxArgs) and checked by the caller.
    if (kind === 'multibulk' && n > 2 ** 31 - 1)
      throw new ProtocolError('multibulk_length', 'invalid multibulk length');
    return n;
  }
}
