/**
 * The NVMe tier's chunk file: its name and its header. One concept: where a
 * chunk's file is, and encoding, decoding and validating the header.
 *
 * Format version 2 (written and read; codec in addon/src/nvme/chunk_format.h,
 * the layout table in docs/tiers.md): a fixed 64-byte header, the chunk key,
 * a CRC32C per 4 KiB block of data, zero padding to a 4 KiB boundary, then
 * the data. The whole-chunk CRC32C in the header is the block CRCs combined;
 * the header CRC covers the fixed fields, the key and the block table.
 *
 * Files are named by the chunk's object id (src/chunk/name.ts objectId) and
 * index: `<xx>/<32 hex>-<index>`, where xx = (first object id byte + index)
 * mod 256, so the chunks of one big object spread over all 256 directories.
 * Native code holding an object id finds chunk i's file without hashing.
 *
 * Format version 1 (one CRC for the whole data, files named by the SHA-256 of
 * the key) is only decoded, so the tier can migrate such files: see
 * decodeChunkHeaderV1 and docs/tiers.md "Version 1 files".
 */
import { crc32c } from '../chunk/checksum.js';
import { objectId } from '../chunk/name.js';
import { binding } from '../transport/binding.js';

const format = binding().nvmeFormat;

export const CHUNK_MAGIC = Buffer.from('WCCHUNK\0', 'latin1');
export const CHUNK_FORMAT_VERSION = format.formatVersion;
export const MAX_KEY_BYTES = format.maxKeyBytes;
/** A chunk is a few MiB; 1 GiB bounds a corrupt length field well below Buffer's limit. */
export const MAX_DATA_BYTES = format.maxDataBytes;
export const DATA_ALIGN_BYTES = format.alignBytes;
/** The block each CRC32C covers: O_DIRECT's unit, so a range read reads nothing it does not need. */
export const DEFAULT_BLOCK_BYTES = format.defaultBlockBytes;
export const MIN_BLOCK_BYTES = format.minBlockBytes;
export const MAX_BLOCK_BYTES = format.maxBlockBytes;
/** The longest header a valid v2 file has (a 4 KiB key, 1 GiB of 4 KiB blocks). */
export const MAX_DATA_OFFSET = format.maxDataOffset;
/** Reading this much holds the header of any ordinary chunk (4 MiB in 4 KiB blocks, a short key). */
export const HEADER_GUESS_BYTES = 8192;

export interface ChunkFileName {
  readonly objectId: Buffer;
  readonly index: number;
  /** The fan-out directory, two hex characters. */
  readonly subdir: string;
  /** `<32 hex object id>-<index>` */
  readonly name: string;
}

/**
 * The file name of the chunk `key` (a chunkKey() string), or undefined for a
 * string that is not a chunk key (the tier does not store those).
 */
export function chunkFileName(key: string): ChunkFileName | undefined {
  let t: unknown;
  try {
    t = JSON.parse(key);
  } catch {
    return undefined;
  }
  if (!Array.isArray(t) || t.length !== 7) return undefined;
  const [originId, container, objectKey, etag, size, chunkSize, index] = t as unknown[];
  if (
    typeof originId !== 'string' ||
    typeof container !== 'string' ||
    typeof objectKey !== 'string' ||
    typeof etag !== 'string' ||
    typeof size !== 'number' ||
    typeof chunkSize !== 'number' ||
    typeof index !== 'number' ||
    !Number.isInteger(index) ||
    index < 0 ||
    index > 0xffffffff
  )
    return undefined;
  const oid = objectId(originId, { container, key: objectKey, etag, size }, chunkSize);
  return {
    objectId: oid,
    index,
    subdir: ((oid[0]! + index) & 0xff).toString(16).padStart(2, '0'),
    name: `${oid.toString('hex')}-${index}`,
  };
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Where the data of a v2 file for `key` with `dataLength` bytes starts (the header's padded length). */
export function dataOffsetFor(key: string, dataLength: number, blockBytes = DEFAULT_BLOCK_BYTES): number {
  const blocks = Math.ceil(dataLength / blockBytes);
  return alignUp(64 + Buffer.byteLength(key, 'utf8') + 4 * blocks, DATA_ALIGN_BYTES);
}

/**
 * The v2 header for `data` under `key`, zero-padded to its data offset, so a
 * writer can write `[header, data]` back to back; and the data's CRC32C as
 * derived from the block CRCs (a caller compares it with the CRC the chunk
 * carries: one pass over the bytes checks them and builds the block table).
 * Throws RangeError for a key or length the format cannot hold.
 */
export function encodeChunkHeader(
  key: string,
  data: Uint8Array,
  blockBytes = DEFAULT_BLOCK_BYTES,
): { header: Buffer; dataCrc: number } {
  const name = chunkFileName(key);
  if (!name) throw new RangeError(`not a chunk key: ${key.slice(0, 100)}`);
  return binding().nvmeEncodeHeader(key, name.objectId, name.index, data, blockBytes);
}

export interface ChunkHeader {
  readonly key: string;
  readonly objectId: Buffer;
  readonly index: number;
  /** Byte offset of the data in the file; a multiple of DATA_ALIGN_BYTES. */
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly dataCrc32c: number;
  readonly blockBytes: number;
  readonly blockCount: number;
}

export type DecodeFailure =
  | 'truncated'
  | 'magic'
  | 'version'
  | 'header-crc'
  | 'block-table'
  | 'key-length'
  | 'bounds'
  | 'key-encoding';

export type DecodeResult =
  | { ok: true; header: ChunkHeader }
  | {
      ok: false;
      reason: DecodeFailure;
      /** The header or block table failed its CRC: damaged bytes (a checksum failure). */
      checksum: boolean;
      /** With 'truncated': the header is this long; read that much and decode again. */
      dataOffset?: number;
    };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes and validates a v2 header from the first bytes of a file (pass
 * HEADER_GUESS_BYTES, or the whole file if shorter; a 'truncated' answer
 * with a dataOffset says how much a longer header needs). Natively: the same
 * decoder the reads use.
 */
export function decodeChunkHeader(buf: Uint8Array): DecodeResult {
  const d = binding().nvmeDecodeHeader(buf);
  if (!d.ok)
    return {
      ok: false,
      reason: d.reason as DecodeFailure,
      checksum: d.checksum,
      ...(d.dataOffset !== undefined && d.reason === 'truncated' ? { dataOffset: d.dataOffset } : {}),
    };
  let key: string;
  try {
    key = utf8.decode(d.key);
  } catch {
    return { ok: false, reason: 'key-encoding', checksum: false };
  }
  return {
    ok: true,
    header: {
      key,
      objectId: d.objectId,
      index: d.index,
      dataOffset: d.dataOffset,
      dataLength: d.dataLength,
      dataCrc32c: d.dataCrc,
      blockBytes: d.blockBytes,
      blockCount: d.blockCount,
    },
  };
}

// --- Version 1: decoded for migration only ------------------------------------
//
//   offset  size  field (little-endian)
//   0       8     magic "WCCHUNK\0"
//   8       2     format version = 1
//   10      2     flags = 0
//   12      4     header length = 40 + key length
//   16      4     data offset = header length rounded up to 4096
//   20      4     key length, 1..4096
//   24      8     data length, at most 1 GiB
//   32      4     data CRC32C
//   36      4     header CRC32C over [0, 36) then the key
//   40      k     chunk key
//   D       n     data
// Files are named `<xx>/<64 hex>`: the SHA-256 of the key.

export const V1_FIXED_HEADER_BYTES = 40;
/** Reading this much holds any v1 header. */
export const V1_MAX_DATA_OFFSET = alignUp(V1_FIXED_HEADER_BYTES + MAX_KEY_BYTES, DATA_ALIGN_BYTES);
const V1_HEADER_CRC_AT = 36;

export interface ChunkHeaderV1 {
  readonly key: string;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly dataCrc32c: number;
}

export type DecodeResultV1 = { ok: true; header: ChunkHeaderV1 } | { ok: false; reason: DecodeFailure };

/** Decodes and validates a version 1 header (pass at least V1_MAX_DATA_OFFSET bytes, or the whole file). */
export function decodeChunkHeaderV1(buf: Buffer): DecodeResultV1 {
  if (buf.length < V1_FIXED_HEADER_BYTES) return { ok: false, reason: 'truncated' };
  if (!buf.subarray(0, CHUNK_MAGIC.length).equals(CHUNK_MAGIC)) return { ok: false, reason: 'magic' };
  if (buf.readUInt16LE(8) !== 1) return { ok: false, reason: 'version' };
  const keyLength = buf.readUInt32LE(20);
  if (keyLength === 0 || keyLength > MAX_KEY_BYTES) return { ok: false, reason: 'key-length' };
  const headerLength = V1_FIXED_HEADER_BYTES + keyLength;
  if (buf.length < headerLength) return { ok: false, reason: 'truncated' };
  const fixed = crc32c(buf.subarray(0, V1_HEADER_CRC_AT));
  const crc = crc32c(buf.subarray(V1_FIXED_HEADER_BYTES, headerLength), fixed) >>> 0;
  if (crc !== buf.readUInt32LE(V1_HEADER_CRC_AT)) return { ok: false, reason: 'header-crc' };
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
    key = utf8.decode(buf.subarray(V1_FIXED_HEADER_BYTES, headerLength));
  } catch {
    return { ok: false, reason: 'key-encoding' };
  }
  return {
    ok: true,
    header: { key, dataOffset, dataLength: Number(dataLength), dataCrc32c: buf.readUInt32LE(32) },
  };
}
