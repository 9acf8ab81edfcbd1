/**
 * An S3-compatible store as origin (AWS S3, MinIO, Ceph RGW, moto, another
 * weightcache's S3 door): container = bucket, key = object key. With
 * `bucket` set, every container is instead a key prefix in that one bucket.
 *
 * Version = the ETag (quotes stripped; for multipart uploads not an MD5 but
 * still unique per upload) + Content-Length. Requests are signed with the
 * one SigV4 implementation (src/s3/sigv4.ts) and bounded by `timeoutMs`.
 *
 *   stat        HEAD
 *   revalidate  HEAD with If-None-Match (304 → the known version itself)
 *   read        GET with Range and If-Match: only a 206 with exactly the
 *               Content-Range asked for (or a 200 for the whole object) of
 *               the right ETag is accepted; 412/404 → VERSION_CHANGED
 *   list        ListObjectsV2 (encoding-type=url), following continuation
 *               tokens, bounded like the Azure origin
 */
import { Agent, type Dispatcher } from 'undici';
import { CacheError } from '../errors/cache-error.js';
import { EMPTY_SHA256, type SignInput, signedHeaders, UNSIGNED_PAYLOAD, uriEncode } from '../s3/sigv4.js';
import { withDeadline } from './deadline.js';
import { formatName, validateContainer, validateKey, validateName } from './names.js';
import type { ListOptions, ObjectInfo, ObjectName, ObjectVersion, Origin, ReadOptions } from './origin.js';
import { readExactly } from './read-exactly.js';
import { checkReadRange } from './read-range.js';
import type { CredentialSource } from './s3-credentials.js';

export const S3_LIST_LIMIT = 100_000;
const LIST_PAGE_SIZE = 1000;
/** Most bytes of a listing page or an error body we read. */
const XML_MAX_BYTES = 16 * 1024 * 1024;
const ERROR_BODY_MAX_BYTES = 64 * 1024;

export interface S3OriginOptions {
  /** e.g. https://s3.us-east-1.amazonaws.com, http://127.0.0.1:9000 (a path prefix is kept for path-style). */
  readonly endpoint: string;
  readonly region: string;
  /** null: container = bucket. A name: containers are key prefixes in this bucket. */
  readonly bucket: string | null;
  /** {endpoint}/{bucket}/{key} instead of {bucket}.{endpoint host}/{key}. */
  readonly pathStyle: boolean;
  readonly credentials: CredentialSource;
  readonly timeoutMs: number;
  /** Most entries one list() yields, default and maximum 100_000. */
  readonly maxListResults?: number;
}

export class S3Origin implements Origin {
  readonly kind = 's3';
  readonly id: string;
  private readonly url: URL;
  private readonly basePath: string;
  private readonly agent: Agent;
  private readonly listLimit: number;

  constructor(private readonly o: S3OriginOptions) {
    let url: URL;
    try {
      url = new URL(o.endpoint);
    } catch {
      throw new CacheError('CONFIG_INVALID', `origin.s3.endpoint ${JSON.stringify(o.endpoint)} is not a URL`);
    }
    if (
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      url.username ||
      url.password ||
      url.search
    ) {
      throw new CacheError(
        'CONFIG_INVALID',
        'origin.s3.endpoint must be an http: or https: URL without credentials or a query',
      );
    }
    if (!(o.timeoutMs > 0)) throw new CacheError('CONFIG_INVALID', 's3 origin: timeoutMs must be > 0');
    if (o.bucket !== null) validateContainer(o.bucket);
    this.url = url;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.listLimit = Math.min(o.maxListResults ?? S3_LIST_LIMIT, S3_LIST_LIMIT);
    this.id = `s3:${url.origin}${this.basePath}/${o.region}${o.bucket ? `/${o.bucket}` : ''}`;
    const safetyMs = o.timeoutMs + 1_000;
    this.agent = new Agent({
      connectTimeout: safetyMs,
      headersTimeout: safetyMs,
      bodyTimeout: safetyMs,
      keepAliveTimeout: 30_000,
      connections: 64,
    });
  }

  async stat(name: ObjectName, opts?: ReadOptions): Promise<ObjectInfo> {
    validateName(name);
    return this.call(name, 'HEAD', opts, async (signal) => {
      const res = await this.send(name, 'HEAD', {}, [], signal);
      await drain(res);
      if (res.statusCode !== 200) throw statusError(res.statusCode, name, 'HEAD');
      return infoOf(name, res);
    });
  }

  async revalidate(known: ObjectInfo, opts?: ReadOptions): Promise<ObjectInfo> {
    validateName(known);
    return this.call(known, 'HEAD', opts, async (signal) => {
      const res = await this.send(known, 'HEAD', { 'if-none-match': `"${known.etag}"` }, [], signal);
      await drain(res);
      if (res.statusCode === 304) return known;
      if (res.statusCode !== 200) throw statusError(res.statusCode, known, 'HEAD');
      const now = infoOf(known, res);
      return now.etag === known.etag && now.size === known.size ? known : now;
    });
  }

  async read(
    name: ObjectName,
    version: ObjectVersion,
    offset: number,
    length: number,
    opts?: ReadOptions,
  ): Promise<Buffer> {
    validateName(name);
    checkReadRange(name, version, offset, length);
    const what = `read ${formatName(name)}@${version.etag} [${offset}, +${length})`;
    return this.call(name, what, opts, async (signal) => {
      const cond = { 'if-match': `"${version.etag}"` };
      // No byte range can express zero bytes: prove the version still exists instead.
      const method = length === 0 ? 'HEAD' : 'GET';
      const headers = length === 0 ? cond : { ...cond, range: `bytes=${offset}-${offset + length - 1}` };
      const res = await this.send(name, method, headers, [], signal);
      try {
        if (res.statusCode === 412 || res.statusCode === 404 || res.statusCode === 416) {
          throw new CacheError(
            'VERSION_CHANGED',
            `${formatName(name)} version ${version.etag} is no longer at the origin`,
          );
        }
        const expected = `bytes ${offset}-${offset + length - 1}/${version.size}`;
        if (res.statusCode === 200) {
          if (length !== 0 && !(offset === 0 && length === version.size)) {
            throw bad(`${what}: got 200, not a 206 range`);
          }
          if (header(res, 'content-length') !== String(length === 0 ? version.size : length)) {
            throw bad(`${what}: Content-Length ${header(res, 'content-length')}`);
          }
        } else if (res.statusCode === 206) {
          const cr = header(res, 'content-range');
          if (cr !== expected) throw bad(`${what}: Content-Range ${cr ?? '(none)'}, expected ${expected}`);
        } else {
          throw statusError(res.statusCode, name, method);
        }
        const etag = header(res, 'etag');
        if (etag === undefined || unquote(etag) !== version.etag) {
          throw bad(`${what}: response ETag ${etag ?? '(none)'} differs from the If-Match we sent`);
        }
        if (length === 0) return Buffer.alloc(0);
        return await readExactly(res.body, length, signal, what);
      } finally {
        await discard(res);
      }
    });
  }

  async *list(container: string, prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    validateContainer(container);
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
    const limit = Math.min(opts?.limit ?? this.listLimit, this.listLimit);
    const where = { container, key: prefix };
    const { bucket, key: fullPrefix } = this.locate({ container, key: prefix });
    const strip = fullPrefix.length - prefix.length;
    let emitted = 0;
    let token: string | undefined;
    while (emitted < limit) {
      const query: Array<[string, string]> = [
        ['list-type', '2'],
        ['encoding-type', 'url'],
        ['max-keys', String(Math.min(LIST_PAGE_SIZE, limit - emitted))],
        ['prefix', fullPrefix],
      ];
      if (token) query.push(['continuation-token', token]);
      const page = await this.call(where, 'list', opts, async (signal) => {
        const res = await this.request(bucket, '', 'GET', {}, query, signal);
        const text = await readText(res, XML_MAX_BYTES);
        if (res.statusCode === 404) return undefined; // no such bucket: nothing under it
        if (res.statusCode !== 200) throw statusError(res.statusCode, where, `list (${errorCode(text)})`);
        return parseListPage(text);
      });
      if (!page) return;
      for (const item of page.items) {
        if (emitted >= limit) return;
        const key = item.key.slice(strip);
        // An object whose name our doors would reject cannot be read through the cache; skip it.
        try {
          validateKey(key);
        } catch {
          continue;
        }
        yield { container, key, etag: item.etag, size: item.size, lastModified: item.lastModified };
        emitted++;
      }
      token = page.next;
      if (!token) return;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The bucket and the key in it a name lives at. */
  private locate(name: ObjectName): { bucket: string; key: string } {
    return this.o.bucket === null
      ? { bucket: name.container, key: name.key }
      : { bucket: this.o.bucket, key: `${name.container}/${name.key}` };
  }

  private send(
    name: ObjectName,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    query: Array<[string, string]>,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const { bucket, key } = this.locate(name);
    return this.request(bucket, key, method, headers, query, signal);
  }

  private async request(
    bucket: string,
    key: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    query: Array<[string, string]>,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const encodedKey = key === '' ? '' : uriEncode(key, true);
    const host = this.o.pathStyle ? this.url.host : `${bucket}.${this.url.host}`;
    const path = this.o.pathStyle
      ? `${this.basePath}/${uriEncode(bucket)}/${encodedKey}`
      : `${this.basePath}/${encodedKey}`;
    const creds = await this.o.credentials.get(signal);
    const all: Record<string, string> = creds
      ? signedHeaders({
          method,
          host,
          uri: path,
          query,
          headers,
          payloadHash: method === 'GET' || method === 'HEAD' ? EMPTY_SHA256 : UNSIGNED_PAYLOAD,
          region: this.o.region,
          service: 's3',
          credentials: creds,
          now: new Date(),
        } satisfies SignInput)
      : { ...headers };
    const qs = query.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
    return this.agent.request({
      origin: `${this.url.protocol}//${host}`,
      path: qs ? `${path}?${qs}` : path,
      method,
      headers: { ...all, host },
      signal,
    });
  }

  private call<T>(
    name: ObjectName,
    what: string,
    opts: ReadOptions | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return withDeadline(this.o.timeoutMs, opts?.signal, `s3 ${what}`, fn, (err) => s3Error(err, name, what));
  }
}

interface ListItem {
  readonly key: string;
  readonly etag: string;
  readonly size: number;
  readonly lastModified: Date;
}

/** ListObjectsV2's answer (encoding-type=url), read with a few bounded patterns: the document is flat. */
export function parseListPage(xml: string): { items: ListItem[]; next: string | undefined } {
  const items: ListItem[] = [];
  for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const block = m[1]!;
    const field = (n: string) => new RegExp(`<${n}>([^<]*)</${n}>`).exec(block);
    const key = field('Key')?.[1];
    const etag = field('ETag')?.[1];
    const size = Number(field('Size')?.[1]);
    const lastModified = new Date(field('LastModified')?.[1] ?? '');
    if (
      key === undefined ||
      etag === undefined ||
      !Number.isSafeInteger(size) ||
      Number.isNaN(lastModified.getTime())
    ) {
      throw bad('ListObjectsV2: an entry lacks Key, ETag, Size or LastModified');
    }
    items.push({ key: decodeURIComponent(xmlText(key)), etag: unquote(xmlText(etag)), size, lastModified });
  }
  const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
  const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  return { items, next: truncated && next ? xmlText(next) : undefined };
}

function xmlText(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });
}

function infoOf(name: ObjectName, res: Dispatcher.ResponseData): ObjectInfo {
  const where = formatName(name);
  const size = Number(header(res, 'content-length'));
  const etag = header(res, 'etag');
  const lastModified = new Date(header(res, 'last-modified') ?? '');
  if (!Number.isSafeInteger(size) || size < 0 || !etag || Number.isNaN(lastModified.getTime())) {
    throw bad(`HEAD ${where}: the origin omitted ETag, Content-Length or Last-Modified`);
  }
  return { container: name.container, key: name.key, etag: unquote(etag), size, lastModified };
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function errorCode(xml: string): string {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? 'no error code';
}

async function readText(res: Dispatcher.ResponseData, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += chunk.length;
    if (n > max) {
      res.body.destroy();
      throw bad(`a listing page larger than ${max} bytes`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

async function drain(res: Dispatcher.ResponseData): Promise<void> {
  await res.body.dump({ limit: ERROR_BODY_MAX_BYTES });
}

/** Drains a small body (an error) so the connection is reused; cuts a large one off. */
async function discard(res: Dispatcher.ResponseData): Promise<void> {
  if (res.body.readableEnded || res.body.destroyed) return;
  res.body.on('error', () => {});
  const cl = Number(header(res, 'content-length') ?? Number.NaN);
  if (cl <= ERROR_BODY_MAX_BYTES) await res.body.dump({ limit: ERROR_BODY_MAX_BYTES }).catch(() => {});
  else res.body.destroy();
}

function bad(message: string): CacheError {
  return new CacheError('ORIGIN_BAD_RESPONSE', message);
}

function statusError(status: number, name: ObjectName, what: string): CacheError {
  const where = `${what} ${formatName(name)}`;
  if (status === 404) return new CacheError('NOT_FOUND', `${formatName(name)} not found at the origin`);
  if (status >= 500 || status === 401 || status === 403 || status === 429) {
    // Server errors, throttling and refused credentials: the origin cannot serve us now.
    return new CacheError('ORIGIN_UNAVAILABLE', `${where}: origin answered ${status}`);
  }
  return bad(
    `${where}: unexpected status ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
  );
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function s3Error(err: unknown, name: ObjectName, what: string): CacheError {
  if (CacheError.is(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = `s3 ${what} ${formatName(name)}: ${(err as Error).message}`;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code))
    return new CacheError('ORIGIN_TIMEOUT', message, { cause: err });
  return new CacheError('ORIGIN_UNAVAILABLE', message, { cause: err });
}
