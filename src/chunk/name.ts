/**
 * A chunk is a fixed-size piece of one version of one object. Its name holds
 * everything that determines its bytes — origin, container, key, version
 * (etag + size), chunk size and index — so a cached chunk can never be stale
 * and two different byte strings can never share a name.
 */
import { createHash } from 'node:crypto';
import type { ObjectInfo, ObjectName, ObjectVersion } from '../origin/origin.js';

export interface ChunkName {
  readonly originId: string;
  readonly container: string;
  readonly key: string;
  readonly etag: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly index: number;
}

export function chunkName(
  originId: string,
  object: ObjectName & ObjectVersion,
  chunkSize: number,
  index: number,
): ChunkName {
  return {
    originId,
    container: object.container,
    key: object.key,
    etag: object.etag,
    size: object.size,
    chunkSize,
    index,
  };
}

/**
 * The canonical string of a chunk name: the key of every tier's index and the
 * name stored in an NVMe chunk file's header. JSON of a fixed-order tuple, so
 * no separator inside a key or etag can make two names collide.
 */
export function chunkKey(n: ChunkName): string {
  return JSON.stringify([n.originId, n.container, n.key, n.etag, n.size, n.chunkSize, n.index]);
}

/** Bytes in an object id: half a SHA-256, 128 bits, far beyond any collision risk for a cache. */
export const OBJECT_ID_BYTES = 16;

/**
 * The fixed-length id of one version of one object as it is chunked here: the
 * first 16 bytes of the SHA-256 of the canonical tuple (origin, container, key,
 * etag, size, chunk size). Native code keys chunks by (object id, index), so an
 * I/O thread holding a name's version binding finds chunk `i` without building
 * or hashing strings per request; the full canonical name stays in each chunk
 * file's header, where a read checks it.
 */
export function objectId(originId: string, object: ObjectName & ObjectVersion, chunkSize: number): Buffer {
  const canonical = JSON.stringify([
    originId,
    object.container,
    object.key,
    object.etag,
    object.size,
    chunkSize,
  ]);
  return createHash('sha256').update(canonical).digest().subarray(0, OBJECT_ID_BYTES);
}

/** A fixed-length, filesystem-safe id for a chunk (hex SHA-256 of its key). */
export function chunkFileId(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function chunkCount(size: number, chunkSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / chunkSize);
}

/** Byte offset and length of chunk `index` of an object of `size` bytes. */
export function chunkExtent(
  size: number,
  chunkSize: number,
  index: number,
): { offset: number; length: number } {
  const offset = index * chunkSize;
  return { offset, length: Math.min(chunkSize, size - offset) };
}

export type { ObjectInfo };
