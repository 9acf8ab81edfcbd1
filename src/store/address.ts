/**
 * How the store names a chunk: (object id, index), the object id being the
 * first 16 bytes of the SHA-256 of the versioned object's canonical tuple
 * (src/chunk/name.ts objectId()). The canonical string key is built only when
 * something needs it (an NVMe file's header, demotion), never on a DRAM hit.
 */
import { type ChunkName, chunkKey, chunkName, objectId } from '../chunk/name.js';
import type { ObjectName, ObjectVersion } from '../origin/origin.js';

export type Versioned = ObjectName & ObjectVersion;

export class ChunkAddress {
  private canonical: string | undefined;

  constructor(
    /** 16 bytes; the same for every chunk of one version. */
    readonly objectId: Buffer,
    readonly name: ChunkName,
  ) {}

  get index(): number {
    return this.name.index;
  }

  /** The canonical chunk key (chunkKey()): NVMe files are keyed and labelled by it. */
  get key(): string {
    this.canonical ??= chunkKey(this.name);
    return this.canonical;
  }
}

// The object id of a version, computed once per ObjectInfo the read path holds
// (the lease table hands out one object per binding): a hit hashes nothing.
const ids = new WeakMap<object, { originId: string; chunkSize: number; id: Buffer }>();

export function objectIdOf(originId: string, object: Versioned, chunkSize: number): Buffer {
  const got = ids.get(object);
  if (got && got.originId === originId && got.chunkSize === chunkSize) return got.id;
  const id = objectId(originId, object, chunkSize);
  ids.set(object, { originId, chunkSize, id });
  return id;
}

export function chunkAddress(
  originId: string,
  object: Versioned,
  chunkSize: number,
  index: number,
): ChunkAddress {
  return new ChunkAddress(
    objectIdOf(originId, object, chunkSize),
    chunkName(originId, object, chunkSize, index),
  );
}

/** The address of a chunk named in full (a transport request). */
export function addressOfName(name: ChunkName): ChunkAddress {
  return new ChunkAddress(objectId(name.originId, name, name.chunkSize), name);
}
