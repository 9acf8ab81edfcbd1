/**
 * The blob store behind the cache. Every origin (fs, azure, http, s3) speaks
 * this interface and passes the same contract suite (test/origin/contract.ts).
 *
 * A *version* is the origin's ETag together with the object's size. The bytes
 * of a version never change, so anything keyed by version is never stale;
 * coherence is only about which version a name means now.
 */

export interface ObjectName {
  /** Azure container, S3 bucket, or a top-level folder of an fs origin. */
  readonly container: string;
  /** Blob name / object key / relative path, '/'-separated. */
  readonly key: string;
}

export interface ObjectVersion {
  /** The origin's entity tag, without quotes or W/ prefix. */
  readonly etag: string;
  readonly size: number;
}

export interface ObjectInfo extends ObjectName, ObjectVersion {
  readonly lastModified: Date;
  /**
   * The MD5 of the whole object as the origin stores it (base64 of 16 bytes),
   * for origins that keep one (Azure's Content-MD5 blob property); absent
   * otherwise. The cache never computes it: a door passes on what the origin
   * has, or nothing.
   */
  readonly contentMd5?: string;
}

/** Bytes of an MD5 digest: a Content-MD5 of any other length is not kept. */
export const CONTENT_MD5_BYTES = 16;

/** An origin's Content-MD5 bytes as ObjectInfo carries them; undefined when absent or not an MD5. */
export function contentMd5Of(bytes: Uint8Array | undefined): string | undefined {
  if (bytes?.byteLength !== CONTENT_MD5_BYTES) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export interface ReadOptions {
  readonly signal?: AbortSignal;
}

export interface ChunkReadOptions extends ReadOptions {
  /**
   * Fill this Buffer (exactly `length` bytes long) and return it, instead of
   * allocating one: the read path passes store memory, so a fill lands where
   * the cache keeps it without a copy.
   */
  readonly into?: Buffer;
}

export interface ListOptions extends ReadOptions {
  /** Stop after this many entries; every origin enforces a bound. */
  readonly limit?: number;
}

export interface Origin {
  /** 'fs' | 'azure' | 'http' | 's3' */
  readonly kind: string;
  /**
   * Identifies this origin in chunk names, so two origins never share chunks.
   * Stable across restarts for the same configuration (e.g. 'fs:/abs/root').
   */
  readonly id: string;

  /** Current version of a name. NOT_FOUND when absent. */
  stat(name: ObjectName, opts?: ReadOptions): Promise<ObjectInfo>;

  /**
   * Revalidates a known version with a conditional request where the origin
   * supports one. Returns `known` itself when unchanged, else the new info.
   * NOT_FOUND when the object is gone.
   */
  revalidate(known: ObjectInfo, opts?: ReadOptions): Promise<ObjectInfo>;

  /**
   * Reads exactly `length` bytes at `offset` of the given version into a new
   * Buffer. Fails with VERSION_CHANGED if the origin no longer has that
   * version, ORIGIN_BAD_RESPONSE on a short or long body, ORIGIN_UNAVAILABLE /
   * ORIGIN_TIMEOUT when it cannot be reached. Never returns bytes of another version.
   * With `opts.into`, the bytes are read into that Buffer, which is returned.
   */
  read(
    name: ObjectName,
    version: ObjectVersion,
    offset: number,
    length: number,
    opts?: ChunkReadOptions,
  ): Promise<Buffer>;

  /** Objects under a key prefix, in key order. UNSUPPORTED where the origin cannot list. */
  list(container: string, prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;

  close(): Promise<void>;
}
