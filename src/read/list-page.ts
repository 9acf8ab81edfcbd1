/**
 * One page of a listing snapshot, as every door lists (S3's ListObjectsV2
 * and ListObjects, Azure's List Blobs): the keys under a prefix after a
 * position, folded into common prefixes at a delimiter, up to a count.
 *
 * A continuation token names the snapshot and the last entry returned, so
 * every page of one listing comes from one snapshot while it is kept; after
 * that the next page continues in a new listing from the same key, as S3
 * itself does.
 */
import { CacheError } from '../errors/cache-error.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { Listing } from './listings.js';
import { firstAfter } from './listings.js';

export interface PageParams {
  readonly prefix: string;
  /** '' for none. */
  readonly delimiter: string;
  /** Keys and common prefixes together, at most. */
  readonly maxKeys: number;
  /** Start after this key (S3's start-after, a marker, or a token's last entry). */
  readonly after: string;
  /** `after` was a common prefix: skip every key under it too. */
  readonly afterPrefix: boolean;
}

export interface Page {
  readonly keys: ReadonlyArray<Pick<ObjectInfo, 'key' | 'etag' | 'size' | 'lastModified' | 'contentMd5'>>;
  readonly prefixes: readonly string[];
  readonly truncated: boolean;
  /** The last key or common prefix returned, and whether it was a prefix. */
  readonly last?: { readonly value: string; readonly isPrefix: boolean };
}

export function page(listing: Listing, p: PageParams): Page {
  const files = listing.files;
  if (p.maxKeys === 0) return { keys: [], prefixes: [], truncated: false };
  let i = p.after === '' ? 0 : firstAfter(files, p.after);
  const keys: Array<Page['keys'][number]> = [];
  const prefixes: string[] = [];
  let last: Page['last'];
  const skipUnder = p.afterPrefix ? p.after : undefined;
  while (i < files.length) {
    const f = files[i]!;
    if ((skipUnder !== undefined && f.key.startsWith(skipUnder)) || !f.key.startsWith(p.prefix)) {
      i++;
      continue;
    }
    const cut = p.delimiter === '' ? -1 : f.key.indexOf(p.delimiter, p.prefix.length);
    const cp = cut < 0 ? undefined : f.key.slice(0, cut + p.delimiter.length);
    if (keys.length + prefixes.length >= p.maxKeys) {
      return { keys, prefixes, truncated: true, ...(last ? { last } : {}) };
    }
    if (cp !== undefined) {
      prefixes.push(cp);
      last = { value: cp, isPrefix: true };
      // Every key under this common prefix is one entry: step over them (they sort together).
      while (i < files.length && files[i]!.key.startsWith(cp)) i++;
      continue;
    }
    keys.push({
      key: f.key,
      etag: f.etag,
      size: f.size,
      lastModified: f.lastModified,
      ...(f.contentMd5 === undefined ? {} : { contentMd5: f.contentMd5 }),
    });
    last = { value: f.key, isPrefix: false };
    i++;
  }
  return { keys, prefixes, truncated: false, ...(last ? { last } : {}) };
}

/** A continuation token: the snapshot id, the last entry and whether it was a common prefix. */
export function encodeToken(snapshot: string, last: NonNullable<Page['last']>): string {
  return Buffer.from(JSON.stringify([snapshot, last.value, last.isPrefix ? 1 : 0])).toString('base64url');
}

export function decodeToken(token: string): { snapshot: string; after: string; afterPrefix: boolean } {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      typeof v[0] === 'string' &&
      typeof v[1] === 'string' &&
      (v[2] === 0 || v[2] === 1)
    ) {
      return { snapshot: v[0], after: v[1], afterPrefix: v[2] === 1 };
    }
  } catch {
    // below
  }
  throw new CacheError('BAD_REQUEST', 'the continuation token (marker) is not one this server issued');
}
