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
