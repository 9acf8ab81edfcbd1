/**
 * A plain HTTP server as origin: `GET|HEAD {baseUrl}/{container}/{key}`, each
 * path segment percent-encoded, so a key is always one path below its
 * container and can never be re-read as '..' by the server or a proxy.
 *
 * Version = the strong ETag (quotes stripped) + Content-Length. A server that
 * sends no strong ETag gets a weaker version derived from Last-Modified and
 * Content-Length, written `lm <unix seconds>-<size>`: the space keeps it apart
 * from every real entity-tag (RFC 9110 forbids spaces in one). Its weakness:
 * two uploads of the same size within the same second look alike. Reads of
 * such a version are conditional on If-Unmodified-Since instead of If-Match.
 *
 * A read trusts nothing the server says: it requires 206 with exactly the
 * Content-Range asked for, the version's ETag (or Last-Modified) on the
 * response, and exactly `length` body bytes. A 200 full body is accepted only
 * when the whole object was asked for. The server cannot list (there is no
 * standard listing in HTTP), so manifests need another origin type.
 *
 * stat and revalidate answer "which version is current" (the coherence
 * protocol re-resolves through them after an invalidation), so they carry
 * `Cache-Control: no-cache` (+ `Pragma: no-cache` for HTTP/1.0 proxies): an
 * HTTP cache between us and the origin must revalidate with the origin rather
 * than answer from a copy stored before the change. Reads do not (see read()).
 */
import { Agent, type Dispatcher } from 'undici';
import { CacheError } from '../errors/cache-error.js';
import { withDeadline } from './deadline.js';
import { formatName, validateName } from './names.js';
import type {
  ChunkReadOptions,
  ListOptions,
  ObjectInfo,
  ObjectName,
  ObjectVersion,
  Origin,
  ReadOptions,
} from './origin.js';
import { readExactly } from './read-exactly.js';
import { checkReadRange } from './read-range.js';

export interface HttpOriginOptions {
  /** e.g. 'http://127.0.0.1:9000' or 'https://host/prefix'; objects are at {baseUrl}/{container}/{key}. */
  readonly baseUrl: string;
  /** Bound on each call: connect, headers and body together. */
  readonly timeoutMs: number;
  /** Sent with every request (e.g. Authorization); never part of `id`. */
  readonly headers?: Record<string, string>;
}

const LM_PREFIX = 'lm ';
/** On stat and revalidate: no stored response may answer without the origin confirming it. Overrides configured headers. */
const NO_CACHE: Readonly<Record<string, string>> = { 'cache-control': 'no-cache', pragma: 'no-cache' };
const ERROR_BODY_MAX_BYTES = 64 * 1024;

export class HttpOrigin implements Origin {
  readonly kind = 'http';
  readonly id: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly agent: Agent;

  constructor(opts: HttpOriginOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new CacheError(
        'CONFIG_INVALID',
        `origin.http.baseUrl ${JSON.stringify(opts.baseUrl)} is not a URL`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CacheError('CONFIG_INVALID', 'origin.http.baseUrl must be an http: or https: URL');
    }
    if (url.username || url.password || url.search || url.hash) {
      throw new CacheError(
        'CONFIG_INVALID',
        'origin.http.baseUrl must not carry credentials, a query or a fragment (use origin.http.headers)',
      );
    }
    if (!(opts.timeoutMs > 0)) throw new CacheError('CONFIG_INVALID', 'http origin: timeoutMs must be > 0');
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.id = `http:${this.origin}${this.basePath}`;
    this.timeoutMs = opts.timeoutMs;
    this.headers = Object.fromEntries(
      Object.entries(opts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    // The Deadline bounds each call precisely. undici's own phase timeouts are only a safety net
    // and sit a little later: its coarse timer wheel can fire several hundred ms early, which
    // would make the configured timeout fuzzy.
    const safetyMs = opts.timeoutMs + 1_000;
    this.agent = new Agent({
      connectTimeout: safetyMs,
      headersTimeout: safetyMs,
      bodyTimeout: safetyMs,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      connections: 64,
    });
  }

  async stat(name: ObjectName, opts?: ReadOptions): Promise<ObjectInfo> {
    validateName(name);
    return this.call(name, 'HEAD', opts, async (signal) => {
      const res = await this.send(name, 'HEAD', NO_CACHE, signal);
      await drain(res);
      if (res.statusCode !== 200) throw statusError(res.statusCode, name, 'HEAD');
      return infoOf(name, res);
    });
  }

  async revalidate(known: ObjectInfo, opts?: ReadOptions): Promise<ObjectInfo> {
    validateName(known);
    // A Last-Modified version cannot be sent as If-None-Match; If-Modified-Since does that job.
    const cond: Record<string, string> = isLmVersion(known.etag)
      ? { 'if-modified-since': httpDate(known.etag) }
      : { 'if-none-match': `"${known.etag}"` };
    return this.call(known, 'HEAD', opts, async (signal) => {
      const res = await this.send(known, 'HEAD', { ...cond, ...NO_CACHE }, signal);
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
    opts?: ChunkReadOptions,
  ): Promise<Buffer> {
    validateName(name);
    checkReadRange(name, version, offset, length, opts);
    const what = `read ${formatName(name)}@${version.etag} [${offset}, +${length})`;
    // No no-cache here (the zero-length HEAD included), on purpose: a read asks for the bytes of one named version, and a version's
    // bytes never change. A cache answering If-Match from its stored copy either has that version
    // (its bytes are the right ones; checkVersion makes sure the response is of it) or fails the
    // precondition (412 → VERSION_CHANGED, after which callers re-stat, uncached). Whether that
    // version is still the current one is stat/revalidate's question, not a read's; forcing every
    // chunk read through to the origin would only take away what a CDN in front is for.
    const lm = isLmVersion(version.etag);
    const cond: Record<string, string> = lm
      ? { 'if-unmodified-since': httpDate(version.etag) }
      : { 'if-match': `"${version.etag}"` };
    return this.call(name, what, opts, async (signal) => {
      // No byte range can express zero bytes: prove the version still exists instead.
      const method = length === 0 ? 'HEAD' : 'GET';
      const headers = length === 0 ? cond : { ...cond, range: `bytes=${offset}-${offset + length - 1}` };
      const res = await this.send(name, method, headers, signal);
      try {
        if (res.statusCode === 412 || res.statusCode === 404 || res.statusCode === 416) {
          throw versionGone(name, version);
        }
        const whole = offset === 0 && length === version.size;
        const expectedRange = `bytes ${offset}-${offset + length - 1}/${version.size}`;
        if (res.statusCode === 200 && length === 0) {
          if (header(res, 'content-length') !== String(version.size)) throw versionGone(name, version);
        } else if (res.statusCode === 200) {
          // A server that ignores Range sends the whole object; fine only if that is what we asked.
          if (!whole || header(res, 'content-length') !== String(length)) {
            throw bad(
              `${what}: got 200 with Content-Length ${header(res, 'content-length')}, not a 206 range`,
            );
          }
        } else if (res.statusCode === 206) {
          const cr = header(res, 'content-range');
          if (cr !== expectedRange)
            throw bad(`${what}: Content-Range ${cr ?? '(none)'}, expected ${expectedRange}`);
          const cl = header(res, 'content-length');
          if (cl !== undefined && cl !== String(length))
            throw bad(`${what}: Content-Length ${cl}, expected ${length}`);
        } else {
          throw statusError(res.statusCode, name, method);
        }
        checkVersion(what, res, version);
        if (length === 0) return Buffer.alloc(0);
        return await readExactly(res.body, length, signal, what, opts?.into);
      } finally {
        await discard(res);
      }
    });
  }

  // biome-ignore lint/correctness/useYield: throws by design; the generator keeps the Origin shape.
  async *list(_container: string, _prefix: string, _opts?: ListOptions): AsyncIterable<ObjectInfo> {
    throw new CacheError(
      'UNSUPPORTED',
      'the http origin cannot list; use the fs or azure origin for manifests',
    );
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private send(
    name: ObjectName,
    method: 'GET' | 'HEAD',
    extra: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const path = `${this.basePath}/${encodeURIComponent(name.container)}/${name.key.split('/').map(encodeURIComponent).join('/')}`;
    return this.agent.request({
      origin: this.origin,
      path,
      method,
      headers: { ...this.headers, ...extra },
      signal,
    });
  }

  private call<T>(
    name: ObjectName,
    what: string,
    opts: ReadOptions | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return withDeadline(this.timeoutMs, opts?.signal, `http ${what}`, fn, (err) =>
      httpError(err, name, what),
    );
  }
}

/** The response must describe the version we asked for; anything else is a server not honouring If-Match. */
function checkVersion(what: string, res: Dispatcher.ResponseData, version: ObjectVersion): void {
  checkIdentity(what, res);
  if (isLmVersion(version.etag)) {
    const lm = header(res, 'last-modified');
    if (lm === undefined) throw bad(`${what}: response has no Last-Modified`);
    if (lmVersion(lm, version.size) !== version.etag) {
      throw new CacheError('VERSION_CHANGED', `${what}: origin now has Last-Modified ${lm}`);
    }
    return;
  }
  const etag = header(res, 'etag');
  if (etag === undefined || etag.startsWith('W/')) throw bad(`${what}: response has no strong ETag`);
  if (unquote(etag) !== version.etag) {
    throw bad(`${what}: response ETag ${etag} differs from the If-Match we sent; the origin ignored it`);
  }
}

function infoOf(name: ObjectName, res: Dispatcher.ResponseData): ObjectInfo {
  const where = formatName(name);
  checkIdentity(`HEAD ${where}`, res);
  const cl = header(res, 'content-length');
  const size = cl === undefined ? Number.NaN : Number(cl);
  if (!Number.isSafeInteger(size) || size < 0) throw bad(`HEAD ${where}: no valid Content-Length`);
  const etag = header(res, 'etag');
  const lm = header(res, 'last-modified');
  const lastModified = lm === undefined ? undefined : new Date(lm);
  const lmOk = lastModified !== undefined && !Number.isNaN(lastModified.getTime());
  if (etag !== undefined && !etag.startsWith('W/') && /^"[^"]+"$/.test(etag)) {
    return {
      container: name.container,
      key: name.key,
      etag: unquote(etag),
      size,
      lastModified: lmOk ? lastModified : new Date(0),
    };
  }
  if (lmOk && lm !== undefined) {
    // Weak or missing ETag: a weak one says nothing about bytes, so fall back to Last-Modified.
    return { container: name.container, key: name.key, etag: lmVersion(lm, size), size, lastModified };
  }
  throw bad(`HEAD ${where}: the origin must send a strong ETag or Last-Modified`);
}

/**
 * We never ask for compression (undici sends no Accept-Encoding), and sizes, ranges and bytes
 * must all be of the stored object itself, so an encoded response cannot be used.
 */
function checkIdentity(what: string, res: Dispatcher.ResponseData): void {
  const ce = header(res, 'content-encoding');
  if (ce !== undefined && ce.toLowerCase() !== 'identity') {
    throw bad(`${what}: Content-Encoding ${ce}; the origin must serve objects unencoded`);
  }
}

function lmVersion(lastModified: string, size: number): string {
  return `${LM_PREFIX}${Math.floor(Date.parse(lastModified) / 1000)}-${size}`;
}

function isLmVersion(etag: string): boolean {
  return etag.startsWith(LM_PREFIX);
}

/** The Last-Modified of an `lm` version as an HTTP date. */
function httpDate(lmEtag: string): string {
  const seconds = Number(lmEtag.slice(LM_PREFIX.length).split('-')[0]);
  return new Date(seconds * 1000).toUTCString();
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

async function drain(res: Dispatcher.ResponseData): Promise<void> {
  await res.body.dump({ limit: ERROR_BODY_MAX_BYTES });
}

/**
 * Gets rid of a body we will not read: a small one (an error page, a 412) is drained so the
 * connection can be reused; a large one (a refused 200 of a whole shard) is cut off rather than
 * downloaded.
 */
async function discard(res: Dispatcher.ResponseData): Promise<void> {
  if (res.body.readableEnded || res.body.destroyed) return;
  res.body.on('error', () => {}); // destroy() emits an AbortError nobody else listens for
  const cl = Number(header(res, 'content-length') ?? Number.NaN);
  if (cl <= ERROR_BODY_MAX_BYTES) await res.body.dump({ limit: ERROR_BODY_MAX_BYTES }).catch(() => {});
  else res.body.destroy();
}

function bad(message: string): CacheError {
  return new CacheError('ORIGIN_BAD_RESPONSE', message);
}

function versionGone(name: ObjectName, version: ObjectVersion): CacheError {
  return new CacheError(
    'VERSION_CHANGED',
    `${formatName(name)} version ${version.etag} is no longer at the origin`,
  );
}

function statusError(status: number, name: ObjectName, method: string): CacheError {
  const where = `${method} ${formatName(name)}`;
  if (status === 404 || status === 410)
    return new CacheError('NOT_FOUND', `${formatName(name)} not found at the origin`);
  if (status >= 500 || status === 401 || status === 403 || status === 429) {
    return new CacheError('ORIGIN_UNAVAILABLE', `${where}: origin answered ${status}`);
  }
  return bad(
    `${where}: unexpected status ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
  );
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function httpError(err: unknown, name: ObjectName, what: string): CacheError {
  if (CacheError.is(err)) {
    // readExactly reports a body that stopped; if undici stopped it for stalling, that is a timeout.
    const cause = (err.cause as { code?: unknown } | undefined)?.code;
    if (typeof cause === 'string' && TIMEOUT_CODES.has(cause)) {
      return new CacheError('ORIGIN_TIMEOUT', `http ${what}: ${err.message}`, { cause: err });
    }
    return err;
  }
  const code = (err as { code?: unknown } | null)?.code;
  const message = `http ${what} ${formatName(name)}: ${(err as Error).message}`;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    return new CacheError('ORIGIN_TIMEOUT', message, { cause: err });
  }
  // Refused, reset, DNS failures, a socket closed before the response: the origin is unreachable.
  return new CacheError('ORIGIN_UNAVAILABLE', message, { cause: err });
}
