/**
 * The S3 door: the S3 API's read operations, translated onto the object read
 * and listings below the doors. Path-style (`{endpoint}/{bucket}/{key}`) and,
 * where `s3.baseDomain` is set, virtual-host style (`{bucket}.{baseDomain}`).
 * A bucket is a container.
 *
 *   GET|HEAD /{bucket}/{key}        GetObject / HeadObject (Range, If-Match, If-None-Match, …)
 *   GET /{bucket}?list-type=2       ListObjectsV2          GET /{bucket}   ListObjects
 *   GET /{bucket}?location          GetBucketLocation      HEAD /{bucket}  HeadBucket
 *   GET /                           ListBuckets
 *   anything else                   501 NotImplemented (the door is read-only)
 *
 * Each request is verified (src/s3/verify.ts) before anything else; every
 * failure becomes S3's XML error in one place (src/s3/errors.ts).
 */
import { randomBytes } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { allows, type Grant, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { type Door, makeDoor } from '../http/door.js';
import { decodeSegments } from '../http/object-path.js';
import { clientAbort, header1, param, type RawRequest, rawRequest } from '../http/request.js';
import { admitRead, contentTypeOf, type Headers, sendRead } from '../http/send-read.js';
import { targetOf } from '../http/target.js';
import { validateContainer, validateKey } from '../origin/names.js';
import { decodeToken, encodeToken, page } from '../read/list-page.js';
import type { Listing, Listings } from '../read/listings.js';
import type { ObjectReader } from '../read/object-read.js';
import { contentRange } from '../read/range.js';
import { errorXml, S3Error, toS3Error } from './errors.js';
import { type ListParams, listV1Xml, listV2Xml, parseMaxKeys } from './list.js';
import { authenticate } from './verify.js';
import { escapeXml, text, XML_DECLARATION } from './xml.js';

type Env = { Bindings: HttpBindings };

export interface S3DoorOptions {
  readonly path: string;
  readonly listen: { readonly host: string; readonly port: number } | null;
  /** What GetBucketLocation answers and HeadBucket's x-amz-bucket-region says. */
  readonly region: string;
  /** Virtual-host style: `{bucket}.{baseDomain}` names the bucket; null: path-style only. */
  readonly baseDomain: string | null;
  /** The buckets the door knows (ListBuckets; others are NoSuchBucket); null: any container. */
  readonly buckets: readonly string[] | null;
  readonly maxClockSkewMs: number;
  readonly tokens: TokenSet | null;
  readonly reader: ObjectReader;
  readonly listings: Listings;
}

/** Query parameters that name a sub-resource or an operation this read-only door does not have. */
const OBJECT_SUBRESOURCES = [
  'acl',
  'tagging',
  'attributes',
  'uploadId',
  'uploads',
  'retention',
  'legal-hold',
  'torrent',
  'restore',
  'select',
];
/** Overrides a GetObject may ask for (presigned URLs carry them). */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'Content-Type',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
  'response-content-language': 'Content-Language',
  'response-cache-control': 'Cache-Control',
  'response-expires': 'Expires',
};

export function s3Door(o: S3DoorOptions): Door {
  return makeDoor('s3', o, (prefix, c) => handle(o, prefix, c), answerError);
}

async function handle(o: S3DoorOptions, prefix: string, c: Context<Env>): Promise<Response> {
  const incoming = c.env.incoming;
  const { path, query } = targetOf(incoming);
  const r = rawRequest(incoming, path, query);
  const res = c.env.outgoing;
  res.setHeader('x-amz-request-id', requestId(c));
  const grant = authenticate(r, { tokens: o.tokens, maxClockSkewMs: o.maxClockSkewMs });
  const { bucket, key } = address(o, r, path.slice(prefix.length));
  const method = r.method;
  if (method !== 'GET' && method !== 'HEAD') {
    throw new S3Error(
      501,
      'NotImplemented',
      `${method} is not implemented: weightcache's S3 door is read-only`,
    );
  }
  if (bucket === undefined) {
    if (method === 'HEAD') return c.body(null, 200);
    return xml(c, listBuckets(o, grant));
  }
  checkBucket(o, bucket, grant);
  if (key === undefined) return bucketOperation(o, r, c, bucket);
  for (const name of ['partNumber', 'versionId', ...OBJECT_SUBRESOURCES]) {
    if (param(r, name) !== undefined) {
      throw new S3Error(
        501,
        'NotImplemented',
        name === 'partNumber'
          ? 'partNumber is not supported: weightcache serves whole objects; ask for byte ranges with Range instead'
          : `the ${name} parameter is not supported by weightcache's read-only S3 door`,
      );
    }
  }
  return getObject(o, r, c, bucket, key);
}

/** Bucket and key from virtual-host style (a configured base domain) or path-style. */
function address(o: S3DoorOptions, r: RawRequest, rest: string): { bucket?: string; key?: string } {
  const host = (header1(r, 'host') ?? '').toLowerCase().replace(/:\d+$/, '');
  const segs = rest === '' || rest === '/' ? [] : decodeSegments(rest.slice(1));
  if (o.baseDomain && host.endsWith(`.${o.baseDomain}`)) {
    const bucket = host.slice(0, -(o.baseDomain.length + 1));
    return segs.length === 0 ? { bucket } : { bucket, key: segs.join('/') };
  }
  if (segs.length === 0) return {};
  const [bucket = '', ...keySegs] = segs;
  // `/bucket/` is the bucket itself, as S3 reads it.
  if (keySegs.length === 0 || (keySegs.length === 1 && keySegs[0] === '')) return { bucket };
  return { bucket, key: keySegs.join('/') };
}

function checkBucket(o: S3DoorOptions, bucket: string, grant: Grant | null): void {
  try {
    validateContainer(bucket);
  } catch (err) {
    throw new S3Error(400, 'InvalidBucketName', (err as Error).message, { BucketName: bucket });
  }
  if (o.buckets && !o.buckets.includes(bucket)) {
    throw new S3Error(404, 'NoSuchBucket', 'the specified bucket does not exist', { BucketName: bucket });
  }
  if (grant && !allows(grant, bucket)) {
    throw new S3Error(403, 'AccessDenied', `this access key's token may not read bucket ${bucket}`);
  }
}

async function getObject(o: S3DoorOptions, r: RawRequest, c: Context<Env>, bucket: string, key: string) {
  if (key.endsWith('/')) {
    // A "directory marker" key: no name the cache holds ends in '/'.
    throw new S3Error(404, 'NoSuchKey', 'the specified key does not exist', { Key: key });
  }
  const res = c.env.outgoing;
  const head = r.method === 'HEAD';
  let read: Awaited<ReturnType<ObjectReader['open']>>;
  try {
    read = await o.reader.open({
      name: { container: bucket, key: validateKey(key) },
      head,
      header: (h) => header1(r, h),
      range: header1(r, 'range'),
      // S3 answers one range; a request for several gets the whole object, as from S3.
      maxRanges: 1,
      signal: clientAbort(res),
      door: 's3',
      admit: admitRead(res),
    });
  } catch (err) {
    if (CacheError.is(err, 'NOT_FOUND')) {
      throw new S3Error(404, 'NoSuchKey', 'the specified key does not exist', { Key: key });
    }
    throw err;
  }
  const info = read.info;
  const base: Headers = {
    ETag: `"${info.etag}"`,
    'Last-Modified': info.lastModified.toUTCString(),
    'Accept-Ranges': 'bytes',
  };
  if (read.kind === 'not-modified') {
    res.writeHead(304, base).end();
    return RESPONSE_ALREADY_SENT;
  }
  if (read.kind === 'unsatisfiable') {
    throw new S3Error(416, 'InvalidRange', 'the requested range is not satisfiable', {
      RangeRequested: header1(r, 'range') ?? '',
      ActualObjectSize: String(info.size),
    });
  }
  const headers: Headers = {
    ...base,
    'Content-Type': contentTypeOf(key),
    'Content-Length': read.length,
    'X-Cache-Source': read.source,
  };
  if (read.partial) headers['Content-Range'] = contentRange(read.ranges[0]!, info.size);
  for (const [q, h] of Object.entries(RESPONSE_OVERRIDES)) {
    const v = param(r, q);
    if (v !== undefined) headers[h] = v;
  }
  await sendRead(res, head, read.partial ? 206 : 200, headers, read);
  return RESPONSE_ALREADY_SENT;
}

async function bucketOperation(o: S3DoorOptions, r: RawRequest, c: Context<Env>, bucket: string) {
  if (r.method === 'HEAD') return c.body(null, 200, { 'x-amz-bucket-region': o.region });
  if (param(r, 'location') !== undefined) {
    // us-east-1 is S3's empty LocationConstraint.
    const region = o.region === 'us-east-1' ? '' : o.region;
    return xml(
      c,
      `${XML_DECLARATION}<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${escapeXml(region)}</LocationConstraint>`,
    );
  }
  const listType = param(r, 'list-type');
  const known = new Set([
    'list-type',
    'prefix',
    'delimiter',
    'max-keys',
    'continuation-token',
    'start-after',
    'encoding-type',
    'fetch-owner',
    'marker',
    'x-id',
  ]);
  const unknown = r.query.find(([k]) => !known.has(k) && !k.startsWith('X-Amz-'));
  if (unknown) {
    throw new S3Error(
      501,
      'NotImplemented',
      `the ${unknown[0]} bucket operation is not supported by weightcache's read-only S3 door`,
    );
  }
  if (listType !== undefined && listType !== '2')
    throw new S3Error(400, 'InvalidArgument', 'list-type must be 2');
  const encodingType = param(r, 'encoding-type');
  if (encodingType !== undefined && encodingType !== 'url') {
    throw new S3Error(400, 'InvalidArgument', 'encoding-type must be url');
  }
  const base = {
    bucket,
    prefix: param(r, 'prefix') ?? '',
    delimiter: param(r, 'delimiter') ?? '',
    maxKeys: parseMaxKeys(param(r, 'max-keys')),
    urlEncode: encodingType === 'url',
  };
  const signal = clientAbort(c.env.outgoing);
  if (listType === '2') {
    const token = param(r, 'continuation-token');
    const startAfter = param(r, 'start-after');
    const t = token !== undefined ? decodeToken(token) : undefined;
    const listing = await snapshot(o, bucket, base.prefix, t?.snapshot, signal);
    const after = maxKey(startAfter ?? '', t?.after ?? '');
    const p: ListParams = { ...base, after, afterPrefix: t?.afterPrefix === true && after === t.after };
    const pg = page(listing, p);
    const nextToken = pg.truncated && pg.last ? encodeToken(listing.id, pg.last) : undefined;
    return xml(c, listV2Xml(p, pg, { continuationToken: token, startAfter, nextToken }));
  }
  const marker = param(r, 'marker') ?? '';
  const listing = await snapshot(o, bucket, base.prefix, undefined, signal);
  const p: ListParams = {
    ...base,
    after: marker,
    afterPrefix: base.delimiter !== '' && marker.endsWith(base.delimiter),
  };
  return xml(c, listV1Xml(p, page(listing, p), marker));
}

/** The snapshot a continuation token names while it is kept, else the files now. */
async function snapshot(
  o: S3DoorOptions,
  bucket: string,
  prefix: string,
  id: string | undefined,
  signal: AbortSignal,
): Promise<Listing> {
  try {
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
  } catch (err) {
    throw new S3Error(400, 'InvalidArgument', (err as Error).message);
  }
  return o.listings.resume(bucket, prefix, id, signal);
}

function listBuckets(o: S3DoorOptions, grant: Grant | null): string {
  const names = o.buckets ?? (grant?.containers ? [...grant.containers].sort() : []);
  const visible = names.filter((b) => !grant || allows(grant, b));
  const created = new Date(0).toISOString();
  return (
    `${XML_DECLARATION}<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Owner>${text('ID', 'weightcache')}${text('DisplayName', 'weightcache')}</Owner><Buckets>` +
    visible.map((b) => `<Bucket>${text('Name', b)}${text('CreationDate', created)}</Bucket>`).join('') +
    '</Buckets></ListAllMyBucketsResult>'
  );
}

function maxKey(a: string, b: string): string {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) >= 0 ? a : b;
}

function xml(c: Context<Env>, body: string): Response {
  return c.body(body, 200, { 'Content-Type': 'application/xml' });
}

function requestId(c: Context<Env>): string {
  let id = c.get('s3RequestId' as never) as string | undefined;
  if (!id) {
    id = randomBytes(8).toString('hex').toUpperCase();
    c.set('s3RequestId' as never, id as never);
  }
  return id;
}

function answerError(c: Context<Env>, err: unknown): Response {
  const e = toS3Error(err);
  const id = requestId(c);
  const headers: Record<string, string> = { 'x-amz-request-id': id };
  if (c.env.incoming.method === 'HEAD') return c.body(null, e.status as 400, headers);
  const resource = targetOf(c.env.incoming).path;
  return c.body(errorXml(e, resource, id), e.status as 400, {
    ...headers,
    'Content-Type': 'application/xml',
  });
}
