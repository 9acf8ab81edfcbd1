/**
 * ListObjectsV2 (and the older ListObjects) over a listing snapshot
 * (src/read/listings.ts): prefix, delimiter → CommonPrefixes, max-keys,
 * start-after / marker, continuation tokens, encoding-type=url.
 *
 * A continuation token names the snapshot and the last key (or common
 * prefix) returned, so every page of one listing comes from one snapshot
 * while it is kept; after that the next page continues in a new listing
 * from the same key, as S3 itself does.
 */
import type { Listing } from '../read/listings.js';
import { firstAfter } from '../read/listings.js';
import { S3Error } from './errors.js';
import { uriEncode } from './sigv4.js';
import { text, XML_DECLARATION } from './xml.js';

/** S3's own page limit. */
export const MAX_KEYS = 1000;
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export interface ListParams {
  readonly bucket: string;
  readonly prefix: string;
  readonly delimiter: string;
  readonly maxKeys: number;
  /** Start after this key (start-after, marker, or a continuation token's key). */
  readonly after: string;
  /** The continuation token's key was a common prefix: skip every key under it too. */
  readonly afterPrefix: boolean;
  readonly urlEncode: boolean;
}

export interface Page {
  readonly keys: ReadonlyArray<{ key: string; etag: string; size: number; lastModified: Date }>;
  readonly prefixes: readonly string[];
  readonly truncated: boolean;
  /** The last key or common prefix returned, and whether it was a prefix. */
  readonly last?: { readonly value: string; readonly isPrefix: boolean };
}

/** One page of a listing. */
export function page(listing: Listing, p: ListParams): Page {
  const files = listing.files;
  if (p.maxKeys === 0) return { keys: [], prefixes: [], truncated: false };
  let i = p.after === '' ? 0 : firstAfter(files, p.after);
  const keys: Array<Page['keys'][number]> = [];
  const prefixes: string[] = [];
  let last: Page['last'];
  const skipUnder = p.afterPrefix ? p.after : undefined;
  while (i < files.length) {
    const f = files[i]!;
    if (skipUnder !== undefined && f.key.startsWith(skipUnder)) {
      i++;
      continue;
    }
    if (!f.key.startsWith(p.prefix)) {
      i++;
      continue;
    }
    const cut = p.delimiter === '' ? -1 : f.key.indexOf(p.delimiter, p.prefix.length);
    const cp = cut < 0 ? undefined : f.key.slice(0, cut + p.delimiter.length);
    if (keys.length + prefixes.length >= p.maxKeys)
      return { keys, prefixes, truncated: true, ...(last ? { last } : {}) };
    if (cp !== undefined) {
      prefixes.push(cp);
      last = { value: cp, isPrefix: true };
      // Every key under this common prefix is one entry: step over them (they sort together).
      while (i < files.length && files[i]!.key.startsWith(cp)) i++;
      continue;
    }
    keys.push({ key: f.key, etag: f.etag, size: f.size, lastModified: f.lastModified });
    last = { value: f.key, isPrefix: false };
    i++;
  }
  return { keys, prefixes, truncated: false, ...(last ? { last } : {}) };
}

/** max-keys as S3 reads it: default 1000, larger values mean 1000, negative or not a number is refused. */
export function parseMaxKeys(v: string | undefined): number {
  if (v === undefined) return MAX_KEYS;
  if (!/^\d{1,10}$/.test(v))
    throw new S3Error(400, 'InvalidArgument', 'max-keys must be a non-negative integer');
  return Math.min(Number(v), MAX_KEYS);
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
    // fall through to the error below
  }
  throw new S3Error(400, 'InvalidArgument', 'the continuation token is not one this server issued');
}

interface V2Extra {
  readonly continuationToken?: string | undefined;
  readonly startAfter?: string | undefined;
  readonly nextToken?: string | undefined;
}

export function listV2Xml(p: ListParams, pg: Page, extra: V2Extra): string {
  const enc = (s: string) => (p.urlEncode ? uriEncode(s, true) : s);
  return (
    `${XML_DECLARATION}<ListBucketResult xmlns="${NS}">` +
    text('Name', p.bucket) +
    text('Prefix', enc(p.prefix)) +
    (extra.startAfter !== undefined ? text('StartAfter', enc(extra.startAfter)) : '') +
    (extra.continuationToken !== undefined ? text('ContinuationToken', extra.continuationToken) : '') +
    text('KeyCount', pg.keys.length + pg.prefixes.length) +
    text('MaxKeys', p.maxKeys) +
    (p.delimiter !== '' ? text('Delimiter', enc(p.delimiter)) : '') +
    (p.urlEncode ? text('EncodingType', 'url') : '') +
    text('IsTruncated', pg.truncated) +
    (extra.nextToken !== undefined ? text('NextContinuationToken', extra.nextToken) : '') +
    contents(pg, enc) +
    '</ListBucketResult>'
  );
}

export function listV1Xml(p: ListParams, pg: Page, marker: string): string {
  const enc = (s: string) => (p.urlEncode ? uriEncode(s, true) : s);
  // S3 sends NextMarker only with a delimiter; without one clients continue from the last key.
  const next = pg.truncated && p.delimiter !== '' && pg.last ? text('NextMarker', enc(pg.last.value)) : '';
  return (
    `${XML_DECLARATION}<ListBucketResult xmlns="${NS}">` +
    text('Name', p.bucket) +
    text('Prefix', enc(p.prefix)) +
    text('Marker', enc(marker)) +
    next +
    text('MaxKeys', p.maxKeys) +
    (p.delimiter !== '' ? text('Delimiter', enc(p.delimiter)) : '') +
    (p.urlEncode ? text('EncodingType', 'url') : '') +
    text('IsTruncated', pg.truncated) +
    contents(pg, enc) +
    '</ListBucketResult>'
  );
}

function contents(pg: Page, enc: (s: string) => string): string {
  let out = '';
  for (const k of pg.keys) {
    out +=
      `<Contents>${text('Key', enc(k.key))}${text('LastModified', k.lastModified.toISOString())}` +
      `${text('ETag', `"${k.etag}"`)}${text('Size', k.size)}${text('StorageClass', 'STANDARD')}</Contents>`;
  }
  for (const cp of pg.prefixes) out += `<CommonPrefixes>${text('Prefix', enc(cp))}</CommonPrefixes>`;
  return out;
}
