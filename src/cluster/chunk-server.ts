/**
 * What a node answers on the native transport. The JS side only decides what
 * to send; the addon sends it: a DRAM chunk's Buffer (writev, no copy) or an
 * NVMe chunk file's data region (sendfile). Per the cluster rule, a miss is
 * filled only for chunks this node owns, or stands in for (a STAND_IN request
 * whose reported members, with those in backoff here, are all the members
 * ranked above it), and never for a local-only request; otherwise NOT_FOUND.
 *
 * A whole chunk sent from NVMe by sendfile is not re-read here: it carries
 * the CRC32C its file's header holds, which the receiver checks, discarding a
 * corrupt copy and falling back — bytes stay sacred, at the cost of the
 * receiver's origin read for that chunk. A part of a chunk is read through
 * the store's verified range read (only the blocks it covers, each checked),
 * never sent by sendfile with a CRC32C computed over whatever the file holds
 * now; a damaged chunk is dropped and is a miss. A request the I/O thread hands over
 * after its own verified read of the chunk file failed (nvmeFailed) is never
 * answered by sendfile: the read path reads the chunk again, verifying each
 * block, and drops and refetches a damaged copy.
 */
import type { ChunkName } from '../chunk/name.js';
import { CacheError } from '../errors/cache-error.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import type { ReadPath } from '../read/read-path.js';
import { addressOfName } from '../store/address.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { ChunkPayload, TransportHandler } from '../transport/index.js';
import type { Cluster } from './cluster.js';

export interface ChunkServerDeps {
  readonly originId: string;
  readonly chunkSize: number;
  readonly readPath: ReadPath;
  readonly store: ChunkStore;
  /** Null for a node outside any cluster: it owns every chunk. */
  readonly cluster: Cluster | null;
  /**
   * transport.nativeReads: the addon answers READ_CHUNK hits of bound versions itself, so a name a
   * peer reads is resolved here (its lease publishes the binding) and its next hits skip JavaScript.
   */
  readonly bindVersions?: boolean;
}

export function chunkServer(d: ChunkServerDeps): TransportHandler {
  return {
    async readChunk(
      name: ChunkName,
      offset: number,
      length: number,
      signal: AbortSignal,
      localOnly?: boolean,
      standInFor?: readonly string[],
      nvmeFailed?: boolean,
    ): Promise<ChunkPayload> {
      if (name.originId !== d.originId) {
        throw new CacheError(
          'BAD_REQUEST',
          `chunk of origin ${name.originId}, but this node serves ${d.originId}`,
        );
      }
      if (name.chunkSize !== d.chunkSize) {
        throw new CacheError(
          'BAD_REQUEST',
          `chunk size ${name.chunkSize}, but this node uses ${d.chunkSize}`,
        );
      }
      if (d.bindVersions) {
        // Cached after the first: a map lookup. A failure here is the read's own to meet, if any.
        void d.readPath.resolve({ container: name.container, key: name.key }).catch(() => {});
      }
      const a = addressOfName(name);
      const loc = d.store.locate(a);
      if (loc?.tier === 'dram') return bufferPayload(loc.chunk.data, loc.chunk.crc32c, offset, length);
      if (loc && nvmeFailed) {
        // The I/O thread found the chunk file damaged (a block failed its CRC32C), gone or short:
        // not sent by sendfile as it is. The read path reads it again, verifying every block, and
        // drops and refetches a damaged copy (a local-only probe is told it is not here).
        if (localOnly) {
          throw new CacheError(
            'NOT_FOUND',
            `chunk ${name.index} of ${formatName(name)} failed its local read`,
          );
        }
        const { chunk } = await d.readPath.chunk(name, name.index, signal);
        return bufferPayload(chunk.data, chunk.crc32c, offset, length);
      }
      if (loc && offset === 0 && length === loc.length) {
        // Whole: sendfile, with the CRC32C the file's header holds; the receiver checks it.
        return { kind: 'file', path: loc.path, offset: loc.dataOffset, length, crc32c: loc.crc32c };
      }
      if (loc && offset + length <= loc.length) {
        // A part: a CRC32C computed while sending would vouch for whatever the file holds now, so
        // only its blocks are read, each verified. A damaged chunk is dropped: a miss, below.
        const part = await d.store.readRange(a, offset, length);
        if (part) return { kind: 'buffer', data: part };
      }
      const fills =
        !localOnly &&
        (!d.cluster ||
          d.cluster.owns(a.key) ||
          (standInFor !== undefined && d.cluster.standIn(a.key, standInFor)));
      if (!fills) {
        throw new CacheError('NOT_FOUND', `chunk ${name.index} of ${formatName(name)} is not cached here`);
      }
      const { chunk } = await d.readPath.chunk(name, name.index, signal);
      return bufferPayload(chunk.data, chunk.crc32c, offset, length);
    },
    stat(name: ObjectName, signal: AbortSignal): Promise<ObjectInfo> {
      return d.readPath.resolve(name, signal);
    },
  };
}

function bufferPayload(data: Buffer, crc32c: number, offset: number, length: number): ChunkPayload {
  if (offset + length > data.length)
    throw new CacheError('RANGE_NOT_SATISFIABLE', 'range past the end of the chunk');
  if (offset === 0 && length === data.length) return { kind: 'buffer', data, crc32c };
  return { kind: 'buffer', data: data.subarray(offset, offset + length) };
}
