/**
 * Azure Blob Storage as origin: container = Azure container, key = blob name.
 *
 * Version = the blob's ETag (quotes stripped) + Content-Length. Every read is
 * conditional on that ETag (If-Match), so a blob replaced between stat and
 * read fails with VERSION_CHANGED instead of returning bytes of the new upload.
 * Ranges up to 4 MiB (the chunk size) are read with x-ms-range-get-content-md5
 * and checked against the MD5 Azure computes over the range: the bytes we put
 * into the cache are exactly the bytes Azure stored.
 *
 * Every call is bounded by `timeoutMs`, including the SDK's own retries: the
 * SDK's default policy (4 tries, exponential back-off up to 2 minutes) would
 * otherwise make a dead origin hang a fill for minutes.
 */
import { createHash } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { CacheError } from '../errors/cache-error.js';
import { withDeadline } from './deadline.js';
import { formatName, validateContainer, validateKey, validateName } from './names.js';
import {
  type ChunkReadOptions,
  contentMd5Of,
  type ListOptions,
  type ObjectInfo,
  type ObjectName,
  type ObjectVersion,
  type Origin,
  type ReadOptions,
} from './origin.js';
import { readExactly } from './read-exactly.js';
import { checkReadRange } from './read-range.js';

export const AZURE_LIST_LIMIT = 100_000;
/** Azure computes a range MD5 only for ranges of at most 4 MiB. */
export const AZURE_MD5_MAX_BYTES = 4 * 1024 * 1024;
/** Azure's container rule: 3-63 of [a-z0-9-], starting with a letter or digit, no '--', not ending in '-'. */
const AZURE_CONTAINER_RE = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;
/** Azure's own maximum page size for List Blobs. */
const LIST_PAGE_SIZE = 5_000;

export interface AzureOriginOptions {
  readonly connectionString: string;
  /** Bound on each call (stat, revalidate, read, one page of list), retries included. */
  readonly timeoutMs: number;
  /** Most entries one list() yields, default and maximum 100_000; the listing stops there. */
  readonly maxListResults?: number;
}

export class AzureOrigin implements Origin {
  readonly kind = 'azure';
  readonly id: string;
  private readonly service: BlobServiceClient;
  private readonly timeoutMs: number;
  private readonly listLimit: number;

  constructor(opts: AzureOriginOptions) {
    if (!(opts.timeoutMs > 0)) throw new CacheError('CONFIG_INVALID', 'azure origin: timeoutMs must be > 0');
    this.timeoutMs = opts.timeoutMs;
    this.listLimit = Math.min(opts.maxListResults ?? AZURE_LIST_LIMIT, AZURE_LIST_LIMIT);
    try {
      this.service = BlobServiceClient.fromConnectionString(opts.connectionString, {
        retryOptions: {
          // One retry for a blip; our Deadline bounds the whole call regardless.
          maxTries: 2,
          tryTimeoutInMs: opts.timeoutMs,
          retryDelayInMs: 100,
          maxRetryDelayInMs: 500,
        },
        keepAliveOptions: { enable: true },
      });
    } catch (err) {
      // Never echo the connection string: it holds the account key.
      throw new CacheError(
        'CONFIG_INVALID',
        `origin.azure.connectionString is invalid: ${(err as Error).message.replace(/AccountKey=[^;]*/gi, 'AccountKey=***')}`,
      );
    }
    // The URL may carry a SAS token in its query; keep only account and endpoint so the id is stable
    // across key rotation and never leaks a secret into chunk names or logs.
    const url = new URL(this.service.url);
    this.id = `azure:${this.service.accountName}@${url.origin}${url.pathname.replace(/\/$/, '')}`;
  }

  async stat(name: ObjectName, opts?: ReadOptions): Promise<ObjectInfo> {
    validateAzureName(name);
    return this.call(name, 'stat', opts, async (signal) => {
      const p = await this.blob(name).getProperties({ abortSignal: signal });
      return infoOf(name, p.etag, p.contentLength, p.lastModified, p.contentMD5);
    });
  }

  async revalidate(known: ObjectInfo, opts?: ReadOptions): Promise<ObjectInfo> {
    validateAzureName(known);
    return this.call(known, 'revalidate', opts, async (signal) => {
      try {
        const p = await this.blob(known).getProperties({
          abortSignal: signal,
          conditions: { ifNoneMatch: quote(known.etag) },
        });
        return infoOf(known, p.etag, p.contentLength, p.lastModified, p.contentMD5);
      } catch (err) {
        if (statusOf(err) === 304) return known;
        throw err;
      }
    });
  }

  async read(
    name: ObjectName,
    version: ObjectVersion,
    offset: number,
    length: number,
    opts?: ChunkReadOptions,
  ): Promise<Buffer> {
    validateAzureName(name);
    checkReadRange(name, version, offset, length, opts);
    const what = `read ${formatName(name)}@${version.etag} [${offset}, +${length})`;
    return this.call(name, what, opts, async (signal) => {
      const blob = this.blob(name);
      const conditions = { ifMatch: quote(version.etag) };
      try {
        if (length === 0) {
          // No byte range can express zero bytes; prove the version still exists instead.
          await blob.getProperties({ abortSignal: signal, conditions });
          return Buffer.alloc(0);
        }
        const md5 = length <= AZURE_MD5_MAX_BYTES;
        const res = await blob.download(offset, length, {
          abortSignal: signal,
          conditions,
          rangeGetContentMD5: md5,
          // The SDK would silently resume a broken body with more requests; we'd rather fail
          // fast and let the cache's fill logic decide.
          maxRetryRequests: 0,
        });
        const body = res.readableStreamBody;
        if (res.etag === undefined || unquote(res.etag) !== version.etag) {
          // We sent If-Match: a different ETag means the service (or something in between)
          // ignored it, so nothing in this response can be trusted.
          (body as { destroy?(): void } | undefined)?.destroy?.();
          throw new CacheError(
            'ORIGIN_BAD_RESPONSE',
            `${what}: response ETag ${res.etag ?? '(none)'} is not the one asked for`,
          );
        }
        const expected = `bytes ${offset}-${offset + length - 1}/${version.size}`;
        if (res.contentRange !== undefined ? res.contentRange !== expected : length !== version.size) {
          (body as { destroy?(): void } | undefined)?.destroy?.();
          throw new CacheError(
            'ORIGIN_BAD_RESPONSE',
            `${what}: Content-Range ${res.contentRange ?? '(none)'}, expected ${expected}`,
          );
        }
        if (body === undefined) throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: response has no body`);
        const buf = await readExactly(
          body as unknown as AsyncIterable<Uint8Array>,
          length,
          signal,
          what,
          opts?.into,
        );
        if (md5) checkMd5(what, buf, res.contentMD5);
        return buf;
      } catch (err) {
        // For a read, a vanished blob means the version we were asked for is gone.
        if (statusOf(err) === 404 || statusOf(err) === 412) throw versionGone(name, version);
        throw err;
      }
    });
  }

  async *list(container: string, prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    validateAzureContainer(validateContainer(container));
    validateKey(prefix, { allowEmpty: true, what: 'prefix' });
    const limit = Math.min(opts?.limit ?? this.listLimit, this.listLimit);
    const client = this.service.getContainerClient(container);
    const where = { container, key: prefix };
    let emitted = 0;
    let marker: string | undefined;
    while (emitted < limit) {
      const pageSize = Math.min(LIST_PAGE_SIZE, limit - emitted);
      // One deadline per page: a listing of 100k blobs legitimately takes longer than one timeout.
      const page = await this.call(where, 'list', opts, async (signal) => {
        try {
          const it = client.listBlobsFlat({ prefix, abortSignal: signal }).byPage({
            maxPageSize: pageSize,
            ...(marker ? { continuationToken: marker } : {}),
          });
          return (await it.next()).value;
        } catch (err) {
          if (statusOf(err) === 404) return undefined; // no such container: nothing under it
          throw err;
        }
      });
      if (!page) return;
      for (const item of page.segment.blobItems) {
        if (emitted >= limit) return;
        // A blob whose name our doors would reject cannot be read through the cache; skip it.
        try {
          validateKey(item.name);
        } catch {
          continue;
        }
        const p = item.properties;
        yield infoOf({ container, key: item.name }, p.etag, p.contentLength, p.lastModified, p.contentMD5);
        emitted++;
      }
      marker = page.continuationToken;
      if (!marker) return;
    }
  }

  async close(): Promise<void> {}

  private blob(name: ObjectName) {
    return this.container(name.container).getBlobClient(name.key);
  }

  private container(container: string): ContainerClient {
    return this.service.getContainerClient(container);
  }

  /** Runs one bounded call and translates whatever it throws into a CacheError. */
  private call<T>(
    name: ObjectName,
    what: string,
    opts: ReadOptions | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return withDeadline(this.timeoutMs, opts?.signal, `azure ${what}`, fn, (err) =>
      azureError(err, name, what),
    );
  }
}

/**
 * Names any door accepts, narrowed to what Azure can hold. Checked here rather than left to the
 * service because Azure answers a HEAD for a bad container name with a bare 400 and no error code.
 */
function validateAzureName(name: ObjectName): void {
  validateName(name);
  validateAzureContainer(name.container);
}

function validateAzureContainer(container: string): void {
  if (!AZURE_CONTAINER_RE.test(container)) {
    throw new CacheError(
      'BAD_KEY',
      `${JSON.stringify(container)} is not an Azure container name: 3-63 lowercase letters, digits and single '-', starting and ending with a letter or digit`,
    );
  }
}

function checkMd5(what: string, buf: Buffer, md5: Uint8Array | undefined): void {
  if (!md5) throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: origin sent no range MD5`);
  const got = createHash('md5').update(buf).digest();
  if (!got.equals(Buffer.from(md5.buffer, md5.byteOffset, md5.byteLength))) {
    throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: range MD5 does not match the bytes received`);
  }
}

function infoOf(
  name: ObjectName,
  etag: string | undefined,
  size: number | undefined,
  lastModified: Date | undefined,
  md5: Uint8Array | undefined,
): ObjectInfo {
  if (!etag || size === undefined || !lastModified) {
    throw new CacheError(
      'ORIGIN_BAD_RESPONSE',
      `${formatName(name)}: origin omitted ETag, Content-Length or Last-Modified`,
    );
  }
  const info = { container: name.container, key: name.key, etag: unquote(etag), size, lastModified };
  // The blob's own Content-MD5 property (set by Put Blob, or by whoever committed the block list):
  // carried so the Azure door can answer it as the service would; absent when the blob has none.
  const contentMd5 = contentMd5Of(md5);
  return contentMd5 === undefined ? info : { ...info, contentMd5 };
}

function quote(etag: string): string {
  return `"${etag}"`;
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function versionGone(name: ObjectName, version: ObjectVersion): CacheError {
  return new CacheError(
    'VERSION_CHANGED',
    `${formatName(name)} version ${version.etag} is no longer at the origin`,
  );
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function azureError(err: unknown, name: ObjectName, what: string): CacheError {
  if (CacheError.is(err)) return err;
  const where = formatName(name);
  const status = statusOf(err);
  const code = (err as { code?: unknown } | null)?.code;
  const msg = `azure ${what}: ${status ?? ''} ${typeof code === 'string' ? code : ''} ${(err as Error).message ?? ''}`;
  if (status === 404) return new CacheError('NOT_FOUND', `${where} not found at the origin`, { cause: err });
  if (status === 412)
    return new CacheError('VERSION_CHANGED', `${where} changed at the origin`, { cause: err });
  if (status === 400 && (code === 'InvalidResourceName' || code === 'OutOfRangeInput')) {
    return new CacheError('BAD_KEY', `${where} is not a valid Azure name`, { cause: err });
  }
  if (status === undefined || status >= 500 || status === 401 || status === 403 || status === 429) {
    // Refused/reset connections, throttling, server errors, and credentials Azure rejects: the
    // origin cannot serve us right now.
    return new CacheError('ORIGIN_UNAVAILABLE', msg.replace(/\s+/g, ' '), { cause: err });
  }
  return new CacheError('ORIGIN_BAD_RESPONSE', msg.replace(/\s+/g, ' '), { cause: err });
}
