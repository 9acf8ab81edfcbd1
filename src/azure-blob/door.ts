/**
 * The Azure Blob door: the Blob service's read operations, translated onto
 * the object read and listings below the doors. The account is the first
 * path segment, as Azurite-style connection strings address it
 * (`BlobEndpoint=http://cache:8420/azure/{account}`); a container is a
 * container.
 *
 *   GET|HEAD /{account}/{container}/{blob}                    Get Blob / Get Blob Properties
 *   GET /{account}/{container}?restype=container&comp=list   List Blobs
 *   GET|HEAD /{account}/{container}?restype=container        Get Container Properties
 *   GET /{account}/?comp=list                                List Containers (the token's scope)
 *   GET|HEAD /{account}/?restype=account&comp=properties     Get Account Information
 *   other methods                                             405 UnsupportedHttpVerb (read-only)
 *
 * Every request is authenticated (shared-key.ts) before anything else; every
 * error carries `x-ms-error-code` (errors.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { allows, type Grant, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { type Door, makeDoor } from '../http/door.js';
import { decodeSegments } from '../http/object-path.js';
import { clientAbort, header1, param, type RawRequest, rawRequest } from '../http/request.js';
import { admitRead, contentTypeOf, type Headers, sendRead } from '../http/send-read.js';
import { writeWithBackpressure } from '../http/stream.js';
import { targetOf } from '../http/target.js';
import { validateContainer, validateKey } from '../origin/names.js';
import { decodeToken, encodeToken, type Page, page } from '../read/list-page.js';
import { compareKeys, type Listing, type Listings } from '../read/listings.js';
import type { ObjectContent, ObjectReader } from '../read/object-read.js';
import { contentRange } from '../read/range.js';
import { escapeXml, text } from '../s3/xml.js';
import { AzureError, errorXml, toAzureError } from './errors.js';
import { type Access, type AzureRequest, authenticate } from './shared-key.js';

type Env = { Bindings: HttpBindings };

export interface AzureDoorOptions {
  readonly path: string;
  readonly listen: { readonly host: string; readonly port: number } | null;
  /** The one account name answered; null: any. */
  readonly account: string | null;
  readonly maxClockSkewMs: number;
  readonly tokens: TokenSet | null;
  readonly reader: ObjectReader;
  readonly listings: Listings;
}

/** The service version the door speaks when a client names none. */
export const AZURE_API_VERSION = '2025-11-05';
/** List Blobs answers at most this many entries per page (the service's own limit). */
export const MAX_RESULTS = 5000;
/** Azure computes a range's Content-MD5 only for ranges of at most 4 MiB. */
const MD5_MAX_BYTES = 4 * 1024 * 1024;
const EPOCH = new Date(0).toUTCString();

export function azureDoor(o: AzureDoorOptions): Door {
  return makeDoor('azure', o, (prefix, c) => handle(o, prefix, c), answerError);
}

async function handle(o: AzureDoorOptions, prefix: string, c: Context<Env>): Promise<Response> {
  const { path, query } = targetOf(c.env.incoming);
  const raw = rawRequest(c.env.incoming, path, query);
  const res = c.env.outgoing;
  res.setHeader('x-ms-request-id', requestId(c));
  res.setHeader('x-ms-version', header1(raw, 'x-ms-version') ?? AZURE_API_VERSION);
  const segs = path.length > prefix.length + 1 ? decodeSegments(path.slice(prefix.length + 1)) : [];
  const [account = '', container = '', ...blobSegs] = segs;
  if (account === '' || (o.account !== null && account !== o.account)) {
    throw new AzureError(
      400,
      'InvalidUri',
      `no such account: ${account || '(none)'}; use BlobEndpoint=.../${o.account ?? '{account}'}`,
    );
  }
  const blob = blobSegs.join('/');
  const socket = c.env.incoming.socket as Partial<TLSSocket> | undefined;
  const r: AzureRequest = {
    ...raw,
    account,
    container,
    blob,
    // The native door reports an IPv6 peer in brackets, node's sockets without.
    clientAddress: socket?.remoteAddress?.replace(/^\[(.*)\]$/, '$1') ?? null,
    secure: socket?.encrypted === true,
  };
  if (raw.method !== 'GET' && raw.method !== 'HEAD') {
    throw new AzureError(
      405,
      'UnsupportedHttpVerb',
      `${raw.method} is not supported: weightcache's Azure Blob door is read-only`,
    );
  }
  const comp = param(raw, 'comp');
  const restype = param(raw, 'restype');
  const listing = comp === 'list';
  const grant = authenticate(r, listing ? 'list' : ('read' satisfies Access), {
    tokens: o.tokens,
    maxClockSkewMs: o.maxClockSkewMs,
  });
  if (container === '') {
    if (comp === 'list') return xml(c, listContainers(grant, account));
    if (restype === 'account' && comp === 'properties') {
      return c.body(null, 200, {
        'x-ms-sku-name': 'Standard_LRS',
        'x-ms-account-kind': 'StorageV2',
        'x-ms-is-hns-enabled': 'false',
      });
    }
    throw new AzureError(
      400,
      'UnsupportedQueryParameter',
      "this service operation is not supported by weightcache's read-only Azure Blob door",
    );
  }
  try {
    validateContainer(container);
  } catch (err) {
    throw new AzureError(400, 'InvalidResourceName', (err as Error).message);
  }
  if (grant && !allows(grant, container)) {
    throw new AzureError(
      403,
      'AuthorizationPermissionMismatch',
      `this token may not read container ${container}`,
    );
  }
  if (blob === '') {
    if (restype !== 'container')
      throw new AzureError(400, 'InvalidQueryParameterValue', 'container operations need restype=container');
    if (comp === 'list') return listBlobs(o, c, raw, container, account);
    if (comp !== undefined)
      throw new AzureError(400, 'UnsupportedQueryParameter', `comp=${comp} is not supported on a container`);
    return c.body(null, 200, {
      ETag: '"0x0"',
      'Last-Modified': EPOCH,
      'x-ms-lease-status': 'unlocked',
      'x-ms-lease-state': 'available',
      'x-ms-has-immutability-policy': 'false',
      'x-ms-has-legal-hold': 'false',
    });
  }
  for (const name of ['comp', 'snapshot', 'versionid', 'blockid']) {
    if (param(raw, name) !== undefined) {
      throw new AzureError(
        400,
        'UnsupportedQueryParameter',
        `${name} is not supported by weightcache's read-only Azure Blob door`,
      );
    }
  }
  return getBlob(o, c, raw, container, blob);
}

async function getBlob(o: AzureDoorOptions, c: Context<Env>, r: RawRequest, container: string, blob: string) {
  const res = c.env.outgoing;
  const head = r.method === 'HEAD';
  // x-ms-range wins over Range when both are sent, as in the service.
  const range = header1(r, 'x-ms-range') ?? header1(r, 'range');
  let key: string;
  try {
    key = validateKey(blob);
  } catch (err) {
    throw new AzureError(400, 'InvalidResourceName', (err as Error).message);
  }
  let read: Awaited<ReturnType<ObjectReader['open']>>;
  try {
    read = await o.reader.open({
      name: { container, key },
      head,
      header: (h) => header1(r, h),
      range,
      maxRanges: 1,
      signal: clientAbort(res),
      door: 'azure',
      admit: admitRead(res),
    });
  } catch (err) {
    if (CacheError.is(err, 'NOT_FOUND'))
      throw new AzureError(404, 'BlobNotFound', 'The specified blob does not exist.');
    throw err;
  }
  const info = read.info;
  const base: Headers = {
    ETag: `"${info.etag}"`,
    'Last-Modified': info.lastModified.toUTCString(),
    'Accept-Ranges': 'bytes',
    'x-ms-blob-type': 'BlockBlob',
    'x-ms-creation-time': info.lastModified.toUTCString(),
    'x-ms-lease-status': 'unlocked',
    'x-ms-lease-state': 'available',
    'x-ms-server-encrypted': 'true',
  };
  if (read.kind === 'not-modified') {
    res.writeHead(304, base).end();
    return RESPONSE_ALREADY_SENT;
  }
  if (read.kind === 'unsatisfiable') {
    throw new AzureError(
      416,
      'InvalidRange',
      'The range specified is invalid for the current size of the resource.',
      {},
      {
        'Content-Range': `bytes */${info.size}`,
      },
    );
  }
  const headers: Headers = {
    ...base,
    'Content-Type': contentTypeOf(key),
    'Content-Length': read.length,
    'X-Cache-Source': read.source,
  };
  if (read.partial) headers['Content-Range'] = contentRange(read.ranges[0]!, info.size);
  if (read.partial || range !== undefined) headers['x-ms-blob-content-length'] = String(info.size);
  // The blob's own Content-MD5, only if the origin keeps one (never computed here), where the
  // service puts it: Content-MD5 for the properties and a whole-blob read, x-ms-blob-content-md5
  // beside a ranged one (whose Content-MD5, if asked for, is the range's own).
  if (info.contentMd5 !== undefined) {
    headers[!head && range !== undefined ? 'x-ms-blob-content-md5' : 'Content-MD5'] = info.contentMd5;
  }
  if (header1(r, 'x-ms-range-get-content-md5') === 'true') {
    if (!read.partial || read.length > MD5_MAX_BYTES) {
      throw new AzureError(
        400,
        'OutOfRangeInput',
        'x-ms-range-get-content-md5 needs a range of at most 4 MiB',
      );
    }
    if (!head) return sendWithMd5(res, headers, read);
  }
  await sendRead(res, head, read.partial ? 206 : 200, headers, read);
  return RESPONSE_ALREADY_SENT;
}

/** A range of at most 4 MiB with the MD5 of its bytes: gathered first, since the header goes before the body. */
async function sendWithMd5(
  res: Context<Env>['env']['outgoing'],
  headers: Headers,
  read: ObjectContent,
): Promise<Response> {
  const s = await read.slices(0);
  const parts = [s.first.data];
  for await (const slice of s.rest) parts.push(slice.data);
  const body = Buffer.concat(parts);
  res.writeHead(206, { ...headers, 'Content-MD5': createHash('md5').update(body).digest('base64') });
  await writeWithBackpressure(res, body);
  res.end();
  return RESPONSE_ALREADY_SENT;
}

async function listBlobs(
  o: AzureDoorOptions,
  c: Context<Env>,
  r: RawRequest,
  container: string,
  account: string,
) {
  const prefix = param(r, 'prefix') ?? '';
  const delimiter = param(r, 'delimiter') ?? '';
  const marker = param(r, 'marker') ?? '';
  const maxResults = parseMaxResults(param(r, 'maxresults'));
  const includeMetadata = (param(r, 'include') ?? '').split(',').includes('metadata');
  const t = marker === '' ? undefined : decodeToken(marker);
  const listing = await snapshot(o, container, prefix, t?.snapshot, clientAbort(c.env.outgoing));
  const pg = page(listing, {
    prefix,
    delimiter,
    maxKeys: maxResults,
    after: t?.after ?? '',
    afterPrefix: t?.afterPrefix ?? false,
  });
  const next = pg.truncated && pg.last ? encodeToken(listing.id, pg.last) : '';
  const endpoint = new URL(c.req.url);
  let body =
    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="${escapeXml(`${endpoint.origin}${c.req.path.slice(0, c.req.path.indexOf(`/${account}`) + account.length + 2)}`)}" ContainerName="${escapeXml(container)}">` +
    (prefix !== '' ? text('Prefix', prefix) : '') +
    (marker !== '' ? text('Marker', marker) : '') +
    (param(r, 'maxresults') !== undefined ? text('MaxResults', maxResults) : '') +
    (delimiter !== '' ? text('Delimiter', delimiter) : '') +
    '<Blobs>';
  // In name order, blobs and prefixes interleaved, as the service lists them.
  const entries = [
    ...pg.keys.map((k) => ({ name: k.key, xml: blobXml(k, includeMetadata) })),
    ...pg.prefixes.map((p) => ({ name: p, xml: `<BlobPrefix>${text('Name', p)}</BlobPrefix>` })),
  ].sort((a, b) => compareKeys(a.name, b.name));
  for (const e of entries) body += e.xml;
  body += `</Blobs>${next !== '' ? text('NextMarker', next) : '<NextMarker />'}</EnumerationResults>`;
  return xml(c, body);
}

function blobXml(k: Page['keys'][number], includeMetadata: boolean): string {
  const lm = k.lastModified.toUTCString();
  return (
    `<Blob>${text('Name', k.key)}<Properties>${text('Creation-Time', lm)}${text('Last-Modified', lm)}` +
    `${text('Etag', k.etag)}${text('Content-Length', k.size)}${text('Content-Type', contentTypeOf(k.key))}` +
    `<Content-Encoding /><Content-Language />${k.contentMd5 === undefined ? '<Content-MD5 />' : text('Content-MD5', k.contentMd5)}<Cache-Control />` +
    `${text('BlobType', 'BlockBlob')}${text('AccessTier', 'Hot')}${text('AccessTierInferred', 'true')}` +
    `${text('LeaseStatus', 'unlocked')}${text('LeaseState', 'available')}${text('ServerEncrypted', 'true')}</Properties>` +
    `${includeMetadata ? '<Metadata />' : ''}</Blob>`
  );
}

function parseMaxResults(v: string | undefined): number {
  if (v === undefined) return MAX_RESULTS;
  if (!/^\d{1,10}$/.test(v) || Number(v) < 1) {
    throw new AzureError(400, 'OutOfRangeQueryParameterValue', 'maxresults must be a positive integer');
  }
  return Math.min(Number(v), MAX_RESULTS);
}

async function snapshot(
  o: AzureDoorOptions,
  container: string,
  prefix: string,
  id: string | undefined,
  signal: AbortSignal,
): Promise<Listing> {
  try {
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
  } catch (err) {
    throw new AzureError(400, 'InvalidQueryParameterValue', (err as Error).message);
  }
  return o.listings.resume(container, prefix, id, signal);
}

function listContainers(grant: Grant | null, account: string): string {
  const names = grant?.containers ? [...grant.containers].sort() : [];
  return (
    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="/${escapeXml(account)}/"><Containers>` +
    names
      .map(
        (n) =>
          `<Container>${text('Name', n)}<Properties>${text('Last-Modified', EPOCH)}${text('Etag', '"0x0"')}</Properties></Container>`,
      )
      .join('') +
    '</Containers><NextMarker /></EnumerationResults>'
  );
}

function xml(c: Context<Env>, body: string): Response {
  return c.body(body, 200, { 'Content-Type': 'application/xml' });
}

function requestId(c: Context<Env>): string {
  let id = c.get('azureRequestId' as never) as string | undefined;
  if (!id) {
    id = randomUUID();
    c.set('azureRequestId' as never, id as never);
  }
  return id;
}

function answerError(c: Context<Env>, err: unknown): Response {
  const e = toAzureError(err);
  const id = requestId(c);
  const headers: Record<string, string> = {
    ...e.headers,
    'x-ms-error-code': e.code,
    'x-ms-request-id': id,
    'x-ms-version': c.req.header('x-ms-version') ?? AZURE_API_VERSION,
  };
  if (c.req.method === 'HEAD') return c.body(null, e.status as 400, headers);
  return c.body(errorXml(e, id), e.status as 400, { ...headers, 'Content-Type': 'application/xml' });
}
