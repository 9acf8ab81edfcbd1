/**
 * GET|HEAD /v1/objects/{container}/{key...}: byte-range reads of one version.
 *
 * Headers are decided before the body: the version (ETag), preconditions,
 * the range, and the first slice of data — fetched before the status line so
 * that an origin that is down or a version that vanished is still a clean
 * 502/504/412 rather than a truncated 200. Once the body has started, a
 * failure can only abort the connection (the client sees a short body, which
 * Content-Length makes detectable) — never bytes of another version.
 */
import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { ReadPath, Slice } from '../read/read-path.js';
import { evaluatePreconditions, ifRangeAllows, quoteEtag } from './conditional.js';
import { errorBody } from './errors.js';
import { planMultipart } from './multipart.js';
import { objectNameFromTarget } from './object-path.js';
import { type ByteRange, contentRange, parseRange } from './range.js';
import { writeWithBackpressure } from './stream.js';

export interface ObjectRouteDeps {
  readonly readPath: ReadPath;
  readonly metrics: Metrics;
  readonly maxRanges: number;
}

export type HttpEnv = { Bindings: HttpBindings };

export function objectHandler(deps: ObjectRouteDeps) {
  return async (c: Context<HttpEnv>): Promise<Response> => {
    const req = c.env.incoming;
    const res = c.env.outgoing;
    const name = objectNameFromTarget(req.url ?? '');
    const ac = new AbortController();
    // Abort only when the client left early: a completed response also emits
    // 'close', and building an abort reason per request was ~15% of a 64 KiB hit.
    res.once('close', () => {
      if (!res.writableFinished) ac.abort(new Error('client closed the connection'));
    });

    // Accept the ETag as the header shows it ("…") or bare.
    const pinned = c.req.query('version')?.replace(/^"(.*)"$/, '$1');
    const header = (h: string) => req.headers[h] as string | undefined;
    const info = await deps.readPath.resolve(name, ac.signal, pinned ?? singleStrongEtag(header('if-match')));
    if (pinned !== undefined && pinned !== info.etag) {
      throw new CacheError(
        'PRECONDITION_FAILED',
        `${name.container}/${name.key}: version ${pinned} is not the current version (${info.etag})`,
      );
    }
    const base: Record<string, string> = {
      ETag: quoteEtag(info.etag),
      'Last-Modified': info.lastModified.toUTCString(),
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
    };
    const pre = evaluatePreconditions(header, info);
    if (pre === 'precondition-failed') {
      throw new CacheError(
        'PRECONDITION_FAILED',
        `${name.container}/${name.key}: precondition failed (ETag ${base.ETag})`,
      );
    }
    if (pre === 'not-modified') {
      res.writeHead(304, base).end();
      return RESPONSE_ALREADY_SENT;
    }

    const range = ifRangeAllows(header, info)
      ? parseRange(header('range'), info.size, deps.maxRanges)
      : ({ kind: 'none' } as const);
    if (range.kind === 'unsatisfiable') {
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
    const ranges: ByteRange[] =
      range.kind === 'ranges' ? [...range.ranges] : [{ start: 0, end: info.size - 1 }];
    const type = contentTypeOf(name.key);
    const isHead = req.method === 'HEAD';

    if (ranges.length <= 1) {
      const r = ranges[0]!;
      const length = info.size === 0 ? 0 : r.end - r.start + 1;
      const headers: Record<string, string | number> = {
        ...base,
        'Content-Type': type,
        'Content-Length': length,
      };
      const status = range.kind === 'ranges' ? 206 : 200;
      if (status === 206) headers['Content-Range'] = contentRange(r, info.size);
      if (isHead || length === 0) {
        headers['X-Cache-Source'] =
          length === 0
            ? 'origin'
            : deps.readPath.peekSource(info, Math.floor(r.start / deps.readPath.chunkSize));
        res.writeHead(status, headers).end();
        return RESPONSE_ALREADY_SENT;
      }
      const slices = deps.readPath.read(info, r.start, r.end, ac.signal);
      const first = await firstSlice(slices);
      headers['X-Cache-Source'] = first.source;
      // A response that is exactly one whole chunk carries the chunk's CRC32C
      // (computed at fill), so a client such as `weightcache pull` can verify
      // end to end what it wrote.
      if (first.crc32c !== undefined && first.data.length === length) {
        headers['X-Chunk-Crc32c'] = first.crc32c.toString(16).padStart(8, '0');
      }
      res.writeHead(status, headers);
      await sendSlices(res, first, slices, info);
      res.end();
      return RESPONSE_ALREADY_SENT;
    }

    const plan = planMultipart(ranges, info.size, type);
    const headers: Record<string, string | number> = {
      ...base,
      'Content-Type': plan.contentType,
      'Content-Length': plan.contentLength,
    };
    if (isHead) {
      headers['X-Cache-Source'] = deps.readPath.peekSource(
        info,
        Math.floor(ranges[0]!.start / deps.readPath.chunkSize),
      );
      res.writeHead(206, headers).end();
      return RESPONSE_ALREADY_SENT;
    }
    let started = false;
    for (const [i, r] of ranges.entries()) {
      const slices = deps.readPath.read(info, r.start, r.end, ac.signal);
      const first = await firstSlice(slices);
      if (!started) {
        headers['X-Cache-Source'] = first.source;
        res.writeHead(206, headers);
        started = true;
      }
      await writeWithBackpressure(res, plan.partHeaders[i]!);
      await sendSlices(res, first, slices, info);
    }
    res.end(plan.trailer);
    return RESPONSE_ALREADY_SENT;
  };
}

/** The tag of an If-Match naming exactly one strong entity tag (a pinned version), else undefined. */
function singleStrongEtag(ifMatch: string | undefined): string | undefined {
  const m = ifMatch === undefined ? null : /^\s*"([^"]*)"\s*$/.exec(ifMatch);
  return m?.[1];
}

async function firstSlice(slices: AsyncGenerator<Slice>): Promise<Slice> {
  const n = await slices.next();
  if (n.done) throw new CacheError('INTERNAL', 'empty read for a non-empty range');
  return n.value;
}

/** Streams a read; after the first byte, a failure aborts the connection. */
async function sendSlices(
  res: ServerResponse,
  first: Slice,
  rest: AsyncGenerator<Slice>,
  info: ObjectInfo,
): Promise<void> {
  try {
    await writeWithBackpressure(res, first.data);
    for await (const s of rest) await writeWithBackpressure(res, s.data);
  } catch (err) {
    await rest.return(undefined);
    // Headers are out: the only honest signal left is a short body.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    throw new BodyAborted(info, err);
  }
}

/** A failure after the status line was sent; the edge logs it but cannot answer it. */
export class BodyAborted extends Error {
  constructor(info: ObjectInfo, cause: unknown) {
    super(`response body for ${info.container}/${info.key} aborted`, { cause });
  }
}

const TYPES: Record<string, string> = {
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  model: 'application/octet-stream',
};

function contentTypeOf(key: string): string {
  const dot = key.lastIndexOf('.');
  return (dot >= 0 && TYPES[key.slice(dot + 1).toLowerCase()]) || 'application/octet-stream';
}
