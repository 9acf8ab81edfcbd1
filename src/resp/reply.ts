/**
 * Server → client encoding, RESP2 and RESP3, onto one socket.
 *
 * Small replies are gathered and sent with one write per batch of pipelined
 * commands (thousands of `+PONG` must not cost thousands of syscalls). Value
 * bytes are never gathered: `bulkStream` writes the `$len` header, then each
 * chunk slice Buffer as it is, then `\r\n`, waiting for 'drain' whenever the
 * socket's buffer is full — so a slow reader holds at most the read path's
 * read-ahead window, however large the value.
 */
import type { Share } from './reply-memory.js';
import type { RespSocket } from './socket.js';

const CRLF = Buffer.from('\r\n');
/** Gathered replies are flushed past this size; larger buffers are written on their own. */
const GATHER_BYTES = 16 * 1024;

export type Protover = 2 | 3;

/** A reply failed after its first bytes were sent: the stream is unusable, close it. */
export class ReplyBroken extends Error {
  override readonly name = 'ReplyBroken';
  constructor(cause: unknown) {
    super(`reply broken mid-value: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class ReplyWriter {
  private parts: Buffer[] = [];
  private gathered = 0;
  private blocked = false;
  protocol: Protover = 2;
  /** Since when a reply has waited for the client to read (socket buffer full; Date.now()), or null. */
  waitingSince: number | null = null;
  /** Error replies written so far (the requests metric tells errors from successes by it). */
  errors = 0;
  /** The first word of the last error reply (`ERR`, `NOT_FOUND`, ...), for the access log. */
  lastErrorCode = '';
  /** Between a streamed value's header and its last byte: nothing else can be said in-band. */
  midValue = false;

  /** Writes issued and completed, and the shares waiting for a write to complete. */
  private issued = 0;
  private completed = 0;
  private awaitingWrite: { seq: number; share: Share }[] = [];

  constructor(private readonly socket: RespSocket) {
    socket.once('close', () => {
      for (const w of this.awaitingWrite.splice(0)) w.share.release();
    });
  }

  simple(s: string): void {
    this.push(Buffer.from(`+${s}\r\n`));
  }

  /** `s` is the whole error line, code first: `ERR ...`, `READONLY ...`. Newlines are flattened. */
  error(s: string): void {
    this.errors++;
    const space = s.indexOf(' ');
    this.lastErrorCode = (space < 0 ? s : s.slice(0, space)).slice(0, 32);
    this.push(Buffer.from(`-${s.replace(/[\r\n]+/g, ' ')}\r\n`));
  }

  int(n: number): void {
    this.push(Buffer.from(`:${n}\r\n`));
  }

  bulk(v: Buffer | string): void {
    const b = typeof v === 'string' ? Buffer.from(v) : v;
    this.push(Buffer.from(`$${b.length}\r\n`));
    this.push(b);
    this.push(CRLF);
  }

  nil(): void {
    this.push(Buffer.from(this.protocol === 3 ? '_\r\n' : '$-1\r\n'));
  }

  array(n: number): void {
    this.push(Buffer.from(`*${n}\r\n`));
  }

  /** A map of n pairs: `%n` in RESP3, a flat array of 2n in RESP2 (as Redis does). */
  map(n: number): void {
    this.push(Buffer.from(this.protocol === 3 ? `%${n}\r\n` : `*${n * 2}\r\n`));
  }

  /** A set: `~n` in RESP3, an array in RESP2. */
  set(n: number): void {
    this.push(Buffer.from(this.protocol === 3 ? `~${n}\r\n` : `*${n}\r\n`));
  }

  /** Convenience for maps of scalar fields (HELLO, WC.STAT...). */
  fields(entries: ReadonlyArray<readonly [string, string | number | readonly string[]]>): void {
    this.map(entries.length);
    for (const [k, v] of entries) {
      this.bulk(k);
      if (typeof v === 'number') this.int(v);
      else if (typeof v === 'string') this.bulk(v);
      else {
        this.array(v.length);
        for (const s of v) this.bulk(s);
      }
    }
  }

  /**
   * A bulk string of exactly `length` bytes from `slices` (chunk Buffers,
   * written as they are). The first slice is awaited before the header goes
   * out, so the usual failures (origin down, version gone) still become a
   * clean error reply. A failure after the header cannot be reported in-band:
   * it is thrown as ReplyBroken and the caller must destroy the connection.
   */
  async bulkStream(length: number, slices: AsyncIterable<{ data: Buffer }>): Promise<void> {
    const it = slices[Symbol.asyncIterator]();
    let step = await it.next();
    this.push(Buffer.from(`$${length}\r\n`));
    this.midValue = true;
    let sent = 0;
    try {
      while (!step.done) {
        sent += step.value.data.length;
        if (sent > length) throw new Error(`bulk reply overran its length (${sent} > ${length})`);
        this.push(step.value.data);
        if (this.pressured) await this.drained(); // small values of a pipeline share one write
        step = await it.next();
      }
      if (sent !== length) throw new Error(`bulk reply ended at ${sent} of ${length} bytes`);
    } catch (err) {
      await it.return?.(undefined);
      throw new ReplyBroken(err);
    }
    this.push(CRLF);
    this.midValue = false;
  }

  /** True while a reply waits for the client to read. */
  get waitingForReader(): boolean {
    return this.waitingSince !== null;
  }

  /**
   * Gives `share` back once the kernel has taken every byte written so far
   * (until then the queued slices still hold the value's chunks), or when the
   * socket closes.
   */
  releaseWhenWritten(share: Share): void {
    this.flush();
    if (this.socket.destroyed || this.completed === this.issued) share.release();
    else this.awaitingWrite.push({ seq: this.issued, share });
  }

  /** Every write goes through here: its callback (the kernel took it) releases the shares waiting on it. */
  private write(b: Buffer): boolean {
    const seq = ++this.issued;
    return this.socket.write(b, () => {
      this.completed = seq; // callbacks come in write order
      while (this.awaitingWrite.length > 0 && this.awaitingWrite[0]!.seq <= seq) {
        this.awaitingWrite.shift()!.share.release();
      }
    });
  }

  /** Sends what was gathered. */
  flush(): void {
    if (this.parts.length === 0) return;
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.gathered);
    this.parts = [];
    this.gathered = 0;
    if (this.socket.destroyed) return;
    if (!this.write(out)) this.blocked = true;
  }

  /** Flushes, then waits until the socket has room again (or is gone). */
  async drained(): Promise<void> {
    this.flush();
    if (!this.blocked) return;
    this.blocked = false;
    if (this.socket.destroyed || this.socket.writableLength === 0) return;
    this.waitingSince = Date.now();
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.waitingSince = null;
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** True after a write was refused: the caller should await drained() before producing more. */
  get pressured(): boolean {
    return this.blocked || this.gathered >= GATHER_BYTES;
  }

  private push(b: Buffer): void {
    if (b.length >= GATHER_BYTES) {
      // Large buffers (value slices) go out as they are, after what was gathered before them.
      this.flush();
      if (!this.socket.destroyed && !this.write(b)) this.blocked = true;
      return;
    }
    this.parts.push(b);
    this.gathered += b.length;
    if (this.gathered >= GATHER_BYTES) this.flush();
  }
}
