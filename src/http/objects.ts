/**
 * GET|HEAD /v1/objects/{container}/{key...}: byte-range reads of one version.
 *
 * This door only translates: the target and `?version=` into an object read
 * (src/read/object-read.ts, shared with the S3, Azure and Hub doors), and its
 * result into RFC 9110 headers. The version, preconditions, range and the
 * first slice of data are all decided before the status line, so an origin
 * that is down or a version that vanished is still a clean 502/504/412 rather
 * than a truncated 200.
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { TokenSet } from '../auth/tokens.js';
import type { Metrics } from '../metrics/metrics.js';
import { quoteEtag } from '../read/conditional.js';
import { ObjectReader } from '../read/object-read.js';
import { contentRange } from '../read/range.js';
import type { ReadPath } from '../read/read-path.js';
import { requireContainer } from './auth.js';
import { errorBody } from './errors.js';
import { planMultipart } from './multipart.js';
import { carriedResolveFailure } from './native-fill.js';
import { objectNameOf } from './object-path.js';
import { clientAbort } from './request.js';
import { admitRead, contentTypeOf, type Headers, sendRead } from './send-read.js';
import { targetOf } from './target.js';

export { BodyAborted } from './send-read.js';

export interface ObjectRouteDeps {
  readonly readPath: ReadPath;
  readonly metrics: Metrics;
  readonly maxRanges: number;
  /** Bearer tokens; null: no auth. The handler checks the container scope itself too (auth.ts). */
  readonly tokens: TokenSet | null;
}

export type HttpEnv = { Bindings: HttpBindings };

export function objectHandler(deps: ObjectRouteDeps) {
  const reader = new ObjectReader(deps);
  return async (c: Context<HttpEnv>): Promise<Response> => {
    const req = c.env.incoming;
    const res = c.env.outgoing;
    const name = objectNameOf(targetOf(req));
    requireContainer(c, deps.tokens, name.container);
    const header = (h: string) => req.headers[h] as string | undefined;
    const head = req.method === 'HEAD';
    const read = await reader.open({
      name,
      head,
      // Accept the ETag as the header shows it ("…") or bare.
      version: c.req.query('version')?.replace(/^"(.*)"$/, '$1'),
      header,
      range: header('range'),
      maxRanges: deps.maxRanges,
      resolveFailure: carriedResolveFailure(req),
      signal: clientAbort(res),
      door: 'objects',
      admit: admitRead(res),
    });
    const info = read.info;
    const base: Headers = {
      ETag: quoteEtag(info.etag),
      'Last-Modified': info.lastModified.toUTCString(),
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
    };
    if (read.kind === 'not-modified') {
      res.writeHead(304, base).end();
      return RESPONSE_ALREADY_SENT;
    }
    if (read.kind === 'unsatisfiable') {
      const body = errorBody(
        'RANGE_NOT_SATISFIABLE',
        `range not satisfiable for an object of ${info.size} bytes`,
      );
      res.writeHead(416, {
        ...base,
        'Content-Range': `bytes */${info.size}`,
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
      return RESPONSE_ALREADY_SENT;
    }
    const type = contentTypeOf(name.key);
    const status = read.partial ? 206 : 200;
    const multipart = read.ranges.length > 1 ? planMultipart(read.ranges, info.size, type) : undefined;
    const headers: Headers = {
      ...base,
      'Content-Type': multipart?.contentType ?? type,
      'Content-Length': multipart?.contentLength ?? read.length,
      'X-Cache-Source': read.source,
    };
    if (read.partial && !multipart) headers['Content-Range'] = contentRange(read.ranges[0]!, info.size);
    // A response that is exactly one whole chunk carries the chunk's CRC32C
    // (computed at fill), so a client such as `weightcache pull` can verify
    // end to end what it wrote.
    if (read.crc32c !== undefined) headers['X-Chunk-Crc32c'] = read.crc32c.toString(16).padStart(8, '0');
    await sendRead(res, head, status, headers, read, multipart);
    return RESPONSE_ALREADY_SENT;
  };
}
