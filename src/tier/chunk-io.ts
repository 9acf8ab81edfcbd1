/**
 * Reading and writing one NVMe chunk file through an open FileHandle. The
 * tier (nvme.ts) decides which file and what a failure means; this file only
 * moves bytes and checks them against the header (chunk-file.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32c } from '../chunk/checksum.js';
import { decodeChunkHeader } from './chunk-file.js';
import type { Chunk } from './tier.js';

/** What the index says about a file; the header must agree. */
export interface ExpectedChunk {
  readonly dataOffset: number;
  readonly dataLength: number;
}

/**
 * Reads and verifies one chunk file: the header must name `key` and match
 * the file's size, the data its CRC32C. Returns the reason on a mismatch.
 * The data is read into one buffer of exactly its length (no concatenation).
 */
export async function readChunkFile(
  fh: FileHandle,
  key: string,
  entry: ExpectedChunk,
): Promise<Chunk | string> {
  const head = Buffer.allocUnsafe(entry.dataOffset);
  if ((await readFully(fh, head, 0)) !== head.length) return 'truncated header';
  const decoded = decodeChunkHeader(head);
  if (!decoded.ok) return decoded.reason;
  const h = decoded.header;
  if (h.key !== key) return 'header names another chunk';
  if (h.dataOffset !== entry.dataOffset || h.dataLength !== entry.dataLength) return 'header changed';
  const { size } = await fh.stat();
  if (size !== h.dataOffset + h.dataLength) return 'file size does not match header';
  const data = Buffer.allocUnsafe(h.dataLength);
  if ((await readFully(fh, data, h.dataOffset)) !== data.length) return 'truncated data';
  if (crc32c(data) !== h.dataCrc32c) return 'data crc32c mismatch';
  return { data, crc32c: h.dataCrc32c };
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

export async function writeChunkFile(fh: FileHandle, header: Buffer, data: Buffer): Promise<void> {
  // One writev for the common case; finish any short write piecewise.
  let written = (await fh.writev([header, data], 0)).bytesWritten;
  const total = header.length + data.length;
  while (written < total) {
    const [buf, off] = written < header.length ? [header, written] : [data, written - header.length];
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, written);
    written += bytesWritten;
  }
}
