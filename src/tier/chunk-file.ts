/**
 * The NVMe tier's on-disk chunk file: a self-describing header, zero padding
 * up to a 4 KiB boundary, then the chunk's bytes. One concept: encode a
 * header, decode and validate one.
 *
 * Layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       8     magic "WCCHUNK\0"
 *   8       2     format version (u16) = 1
 *   10      2     flags (u16) = 0, reserved
 *   12      4     header length (u32) = 40 + key length
 *   16      4     data offset (u32) = header length rounded up to 4096
 *   20      4     key length in bytes (u32), 1..4096
 *   24      8     data length (u64, at most MAX_DATA_BYTES)
 *   32      4     data CRC32C (u32)
 *   36      4     header CRC32C (u32) over bytes [0, 36) then the key bytes
 *   40      k     chunk key, UTF-8 (the chunkKey() string)
 *   40+k    ...   zero padding up to the data offset
 *   D       n     data
 *
 * Why the data starts on a 4 KiB boundary: a future O_DIRECT read or a
 * sendfile from `dataOffset` then works on whole device blocks with no
 * read-modify of the header's block. It costs 4 KiB per chunk (0.1% of a
 * 4 MiB chunk). The header is covered by its own CRC so that a scan at start
 * can trust lengths and the key without reading the data; the data CRC is
 * checked on every read.
 */
import { crc32c } from '../chunk/checksum.js';

export const CHUNK_MAGIC = Buffer.from('WCCHUNK\0', 'latin1');
export const CHUNK_FORMAT_VERSION = 1;
/** Bytes before the key. */
export const FIXED_HEADER_BYTES = 40;
export const MAX_KEY_BYTES = 4096;
export const DATA_ALIGN_BYTES = 4096;
/** The largest data offset a valid file can have: read this much to be sure to hold any header. */
export const MAX_DATA_OFFSET = alignUp(FIXED_HEADER_BYTES + MAX_KEY_BYTES, DATA_ALIGN_BYTES);
/** A chunk is a few MiB; 1 GiB bounds a corrupt length field well below Buffer's limit. */
export const MAX_DATA_BYTES = 1024 * 1024 * 1024;

const HEADER_CRC_AT = 36;

export interface ChunkHeader {
  readonly key: string;
  /** Byte offset of the data in the file; a multiple of DATA_ALIGN_BYTES. */
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly dataCrc32c: number;
}

export type DecodeFailure =
  | 'truncated'
  | 'magic'
  | 'version'
  | 'header-crc'
  | 'key-length'
  | 'bounds'
  | 'key-encoding';

export type DecodeResult = { ok: true; header: ChunkHeader } | { ok: false; reason: DecodeFailure };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Where the data of a file for `key` starts (also the length of the encoded header). */
export function dataOffsetFor(key: string): number {
  return alignUp(FIXED_HEADER_BYTES + Buffer.byteLength(key, 'utf8'), DATA_ALIGN_BYTES);
}

/**
 * The header of a chunk file, zero-padded to its data offset, so a writer can
 * write `[header, data]` back to back. Throws RangeError for a key or length
 * the format cannot hold (the caller checks first; this is the last guard).
 */
export function encodeChunkHeader(key: string, dataLength: number, dataCrc32c: number): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  if (keyBytes.length === 0 || keyBytes.length > MAX_KEY_BYTES)
    throw new RangeError(`chunk key is ${keyBytes.length} bytes; must be 1..${MAX_KEY_BYTES}`);
  if (!Number.isSafeInteger(dataLength) || dataLength < 0 || dataLength > MAX_DATA_BYTES)
    throw new RangeError(`chunk data length ${dataLength} must be 0..${MAX_DATA_BYTES}`);
  const headerLength = FIXED_HEADER_BYTES + keyBytes.length;
  const dataOffset = alignUp(headerLength, DATA_ALIGN_BYTES);
  const buf = Buffer.alloc(dataOffset); // zeroed: padding is deterministic
  CHUNK_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(CHUNK_FORMAT_VERSION, 8);
  buf.writeUInt16LE(0, 10);
  buf.writeUInt32LE(headerLength, 12);
  buf.writeUInt32LE(dataOffset, 16);
  buf.writeUInt32LE(keyBytes.length, 20);
  buf.writeBigUInt64LE(BigInt(dataLength), 24);
  buf.writeUInt32LE(dataCrc32c >>> 0, 32);
  keyBytes.copy(buf, FIXED_HEADER_BYTES);
  buf.writeUInt32LE(headerCrc(buf, keyBytes.length), HEADER_CRC_AT);
  return buf;
}

/**
 * Decodes and validates a header from the first bytes of a file (pass at
 * least `MAX_DATA_OFFSET` bytes, or the whole file if shorter). Checks run
 * cheapest first, and no length is trusted before the header CRC has passed
 * except to bound what the CRC reads.
 */
export function decodeChunkHeader(buf: Buffer): DecodeResult {
  if (buf.length < FIXED_HEADER_BYTES) return { ok: false, reason: 'truncated' };
  if (!buf.subarray(0, CHUNK_MAGIC.length).equals(CHUNK_MAGIC)) return { ok: false, reason: 'magic' };
  if (buf.readUInt16LE(8) !== CHUNK_FORMAT_VERSION) return { ok: false, reason: 'version' };
  const keyLength = buf.readUInt32LE(20);
  if (keyLength === 0 || keyLength > MAX_KEY_BYTES) return { ok: false, reason: 'key-length' };
  const headerLength = FIXED_HEADER_BYTES + keyLength;
  if (buf.length < headerLength) return { ok: false, reason: 'truncated' };
  if (headerCrc(buf, keyLength) !== buf.readUInt32LE(HEADER_CRC_AT))
    return { ok: false, reason: 'header-crc' };

  // The CRC passed, so these fields are what the writer wrote; still reject
  // values this version would never write (a buggy or hostile writer).
  const dataOffset = buf.readUInt32LE(16);
  const dataLength = buf.readBigUInt64LE(24);
  if (
    buf.readUInt16LE(10) !== 0 ||
    buf.readUInt32LE(12) !== headerLength ||
    dataOffset !== alignUp(headerLength, DATA_ALIGN_BYTES) ||
    dataLength > BigInt(MAX_DATA_BYTES)
  )
    return { ok: false, reason: 'bounds' };
  let key: string;
  try {
    key = utf8.decode(buf.subarray(FIXED_HEADER_BYTES, headerLength));
  } catch {
    return { ok: false, reason: 'key-encoding' };
  }
  return {
    ok: true,
    header: { key, dataOffset, dataLength: Number(dataLength), dataCrc32c: buf.readUInt32LE(32) },
  };
}

function headerCrc(buf: Buffer, keyLength: number): number {
  const fixed = crc32c(buf.subarray(0, HEADER_CRC_AT));
  return crc32c(buf.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + keyLength), fixed) >>> 0;
}
