/**
 * Listings below the doors: the files under a key prefix, read from the
 * origin at one moment (a manifest), for S3's ListObjectsV2, Azure's List
 * Blobs and the Hub's revision and tree.
 *
 * A listing is a snapshot with an id derived from its content (SHA-1 over
 * container, prefix and every key, version and size), so the same files give
 * the same id on every node. The id is the Hub door's commit sha (every file
 * of one `snapshot_download` comes from one snapshot) and the anchor of the
 * S3 and Azure doors' continuation tokens (every page of one listing comes
 * from one snapshot). Snapshots are kept for paging and pinning, bounded by
 * the number of files they hold and by age.
 *
 * A request that asks for the current files always lists the origin again;
 * concurrent requests for the same prefix share one origin listing.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { CacheError } from '../errors/cache-error.js';
import { abortable } from '../fill/abortable.js';
import { SingleFlight } from '../fill/single-flight.js';
import { validateContainer, validateKey } from '../origin/names.js';
import type { ObjectInfo, Origin } from '../origin/origin.js';

export interface Listing {
  /** 40 hex digits: SHA-1 over the container, the prefix and each file's key, version and size. */
  readonly id: string;
  readonly container: string;
  readonly prefix: string;
  /** In S3's order: by the UTF-8 bytes of the key. */
  readonly files: readonly ObjectInfo[];
  readonly listedAt: Date;
}

export interface ListingsOptions {
  readonly origin: Origin;
  /** Most files one listing holds; more → TOO_LARGE. */
  readonly maxFiles: number;
  /** Files held over all kept snapshots; the least recently used go first. */
  readonly retainFiles: number;
  /** A snapshot is forgotten this long after it was last used. */
  readonly retainMs: number;
}

export class Listings {
  private readonly flights = new SingleFlight<Listing>();
  private readonly kept: LRUCache<string, Listing>;
  private readonly forgetters = new Set<(id: string) => void>();

  constructor(private readonly o: ListingsOptions) {
    this.kept = new LRUCache<string, Listing>({
      maxSize: Math.max(1, o.retainFiles),
      sizeCalculation: (l) => Math.max(1, l.files.length),
      ttl: o.retainMs,
      updateAgeOnGet: true,
      // Replaced by the same id means the same files: still kept.
      dispose: (_l, id, reason) => {
        if (reason !== 'set') for (const f of this.forgetters) f(id);
      },
    });
  }

  get maxFiles(): number {
    return this.o.maxFiles;
  }

  /** The files under `prefix` now (a new origin listing, shared with concurrent callers). */
  current(container: string, prefix: string, signal?: AbortSignal): Promise<Listing> {
    validateContainer(container);
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
    const { promise } = this.flights.do(`${container}\0${prefix}`, () => this.list(container, prefix));
    return abortable(promise, signal);
  }

  /**
   * Calls `f` with a snapshot's id when it is no longer kept (evicted, run
   * out, deleted): whoever mirrors kept snapshots (the Hub door's fast path)
   * drops its copy. A snapshot is kept at least `retainMs` from its last use.
   */
  onForget(f: (id: string) => void): void {
    this.forgetters.add(f);
  }

  /** Files held over all kept snapshots at most. */
  get retainFiles(): number {
    return this.o.retainFiles;
  }

  /** How long a snapshot stays kept after its last use. */
  get retainMs(): number {
    return this.o.retainMs;
  }

  /** A snapshot by id, while it is kept. */
  get(id: string): Listing | undefined {
    return this.kept.get(id);
  }

  /**
   * Where a paged listing goes on: the snapshot its continuation token names,
   * while it is kept and is of the same container and prefix, else the files now.
   */
  resume(container: string, prefix: string, id: string | undefined, signal?: AbortSignal): Promise<Listing> {
    const kept = id === undefined ? undefined : this.kept.get(id);
    if (kept && kept.container === container && kept.prefix === prefix) return Promise.resolve(kept);
    return this.current(container, prefix, signal);
  }

  private async list(container: string, prefix: string): Promise<Listing> {
    const files: ObjectInfo[] = [];
    for await (const o of this.o.origin.list(container, prefix, { limit: this.o.maxFiles + 1 })) {
      if (files.length === this.o.maxFiles) {
        throw new CacheError(
          'TOO_LARGE',
          `more than ${this.o.maxFiles} files under ${container}/${prefix} (listing.maxFiles)`,
        );
      }
      files.push(o);
    }
    files.sort((a, b) => compareKeys(a.key, b.key));
    const listing: Listing = {
      id: listingId(container, prefix, files),
      container,
      prefix,
      files,
      listedAt: new Date(),
    };
    this.kept.set(listing.id, listing);
    return listing;
  }
}

/** S3's key order: by UTF-8 bytes (JavaScript's < compares UTF-16 units, which differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Index of the first file whose key sorts after `key`. */
export function firstAfter(files: readonly ObjectInfo[], key: string): number {
  let lo = 0;
  let hi = files.length;
  const k = Buffer.from(key, 'utf8');
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(Buffer.from(files[mid]!.key, 'utf8'), k) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function listingId(container: string, prefix: string, files: readonly ObjectInfo[]): string {
  const h = createHash('sha1');
  // JSON strings cannot run into each other: no separator can be forged by a key.
  h.update(JSON.stringify([container, prefix]));
  for (const f of files) h.update(`\n${JSON.stringify([f.key, f.etag, f.size])}`);
  return h.digest('hex');
}
