/**
 * ListObjectsV2 and the older ListObjects as XML, over one page of a listing
 * snapshot (src/read/list-page.ts): prefix, delimiter → CommonPrefixes,
 * max-keys, start-after / marker, continuation tokens, encoding-type=url.
 */
import type { Page, PageParams } from '../read/list-page.js';
import { S3Error } from './errors.js';
import { uriEncode } from './sigv4.js';
import { text, XML_DECLARATION } from './xml.js';

/** S3's own page limit. */
export const MAX_KEYS = 1000;
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** max-keys as S3 reads it: default 1000, larger values mean 1000, negative or not a number is refused. */
export function parseMaxKeys(v: string | undefined): number {
  if (v === undefined) return MAX_KEYS;
  if (!/^\d{1,10}$/.test(v))
    throw new S3Error(400, 'InvalidArgument', 'max-keys must be a non-negative integer');
  return Math.min(Number(v), MAX_KEYS);
}

export interface ListParams extends PageParams {
  readonly bucket: string;
  readonly urlEncode: boolean;
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
