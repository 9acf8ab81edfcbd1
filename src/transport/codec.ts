/**
 * The meta block's field encoding: little-endian integers and `str` =
 * u16 byte length + UTF-8. The reader is strict (short input, trailing bytes,
 * or an integer past 2^53 throw), because meta comes from the network.
 */
import { MAX_META_BYTES } from './protocol.js';

export class MetaError extends Error {
  override readonly name = 'MetaError';
}

export class MetaWriter {
  private buf = Buffer.allocUnsafe(256);
  private at = 0;

  private room(n: number): void {
    if (this.at + n > MAX_META_BYTES) throw new MetaError(`meta exceeds ${MAX_META_BYTES} bytes`);
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.min(MAX_META_BYTES, Math.max(this.buf.length * 2, this.at + n)));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  u16(v: number): this {
    this.room(2);
    this.at = this.buf.writeUInt16LE(v, this.at);
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.at = this.buf.writeUInt32LE(v, this.at);
    return this;
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new MetaError(`u64 field out of range: ${v}`);
    this.room(8);
    this.at = this.buf.writeBigUInt64LE(BigInt(v), this.at);
    return this;
  }

  f64(v: number): this {
    this.room(8);
    this.at = this.buf.writeDoubleLE(v, this.at);
    return this;
  }

  str(s: string): this {
    const n = Buffer.byteLength(s);
    if (n > 0xffff) throw new MetaError(`string field of ${n} bytes exceeds 65535`);
    this.u16(n);
    this.room(n);
    this.at += this.buf.write(s, this.at);
    return this;
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

// fatal: bad UTF-8 is an error; ignoreBOM: a leading U+FEFF is content, kept.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class MetaReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): number {
    if (this.at + n > this.buf.length)
      throw new MetaError(`meta truncated at byte ${this.at} (needs ${n} more)`);
    const at = this.at;
    this.at += n;
    return at;
  }

  u16(): number {
    return this.buf.readUInt16LE(this.need(2));
  }

  u32(): number {
    return this.buf.readUInt32LE(this.need(4));
  }

  u64(): number {
    const v = this.buf.readBigUInt64LE(this.need(8));
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MetaError(`u64 field ${v} exceeds 2^53-1`);
    return Number(v);
  }

  f64(): number {
    return this.buf.readDoubleLE(this.need(8));
  }

  str(): string {
    const n = this.u16();
    const at = this.need(n);
    return this.buf.toString('utf8', at, at + n);
  }

  /** A `str` whose bytes must be valid UTF-8 (MetaError otherwise, never U+FFFD). */
  utf8(): string {
    const n = this.u16();
    const at = this.need(n);
    try {
      return STRICT_UTF8.decode(this.buf.subarray(at, at + n));
    } catch {
      throw new MetaError('string field is not valid UTF-8');
    }
  }

  raw(n: number): Buffer {
    const at = this.need(n);
    return Buffer.from(this.buf.subarray(at, at + n));
  }

  /** True once every byte was consumed: an optional field at the end of a layout is absent. */
  atEnd(): boolean {
    return this.at === this.buf.length;
  }

  /** Throws unless every byte was consumed: trailing bytes mean the peer and we disagree on the layout. */
  end(): void {
    if (this.at !== this.buf.length)
      throw new MetaError(`${this.buf.length - this.at} unexpected trailing meta bytes`);
  }
}
