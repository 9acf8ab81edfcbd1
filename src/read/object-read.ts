/**
 * One object read as every door asks for it: the protocol-neutral part of
 * `GET|HEAD` on an object, below /v1/objects, the S3, Azure Blob and Hub
 * doors (and later a native door's slow path).
 *
 *   name ─► version (resolve; pinned by ?version / If-Match / a snapshot)
 *        ─► preconditions (If-Match, If-None-Match, If-*-Since, If-Range)
 *        ─► the range(s) the request selects
 *        ─► the first slice, fetched before the door writes a status line
 *        ─► the remaining slices, each with its source and (whole chunks) CRC32C
 *
 * A door maps its protocol's request onto `ObjectReadRequest` (S3's and
 * Azure's headers are RFC 9110's; `x-ms-range` is a Range), and the result or
 * the CacheError it throws onto its protocol's response. Nothing here knows a
 * status code, a header name on the way out, or an error format.
 */
import { CacheError } from '../errors/cache-error.js';
import type { Metrics, Source } from '../metrics/metrics.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import { evaluatePreconditions, ifRangeAllows } from './conditional.js';
import { resolvePinned } from './pinned.js';
import { type ByteRange, parseRange } from './range.js';
import type { ReadPath, Slice } from './read-path.js';

/** The door a read came through: a label of weightcache_object_reads_total. */
export type DoorName = 'objects' | 's3' | 'azure' | 'hub';

export interface ObjectReadRequest {
  readonly name: ObjectName;
  /** HEAD decides everything a GET would, but reads no bytes. */
  readonly head: boolean;
  /** Serve only this version (an ETag, unquoted); any other → PRECONDITION_FAILED. */
  readonly version?: string | undefined;
  /** RFC 9110 request headers by lower-case name: if-match, if-none-match, if-modified-since, if-unmodified-since, if-range. */
  readonly header: (name: string) => string | undefined;
  /** The Range header value that applies (a door maps its own, e.g. Azure's x-ms-range). */
  readonly range?: string | undefined;
  /** Most ranges answered at once (multipart); more → the whole object. 1 for protocols without multipart. */
  readonly maxRanges: number;
  /**
   * This very request's resolution already failed a moment ago (the native door's fill of a
   * parked miss found no such object, src/http/native-fill.ts): thrown where resolving would
   * throw, without asking the origin a second time.
   */
  readonly resolveFailure?: CacheError | undefined;
  readonly signal: AbortSignal;
  readonly door: DoorName;
  /**
   * Waits until the answer may hold its read's bytes (an HTTP door's send
   * budget: src/http/send-read.ts, admitRead), called once the ranges are
   * known and before the first byte is read. Without it a flood of requests
   * queued for the budget would each hold a read's window already.
   */
  readonly admit?: ((ranges: readonly ByteRange[]) => Promise<void>) | undefined;
}

/** A range's bytes: the first slice already fetched, the rest as they come. */
export interface SliceStream {
  readonly first: Slice;
  readonly rest: AsyncGenerator<Slice>;
}

export type ObjectRead =
  /** If-None-Match / If-Modified-Since matched: nothing to send but the validators. */
  | { readonly kind: 'not-modified'; readonly info: ObjectInfo }
  /** A Range that overlaps nothing. */
  | { readonly kind: 'unsatisfiable'; readonly info: ObjectInfo }
  | ObjectContent;

export interface ObjectContent {
  readonly kind: 'content';
  readonly info: ObjectInfo;
  /** A Range applied: the answer is partial content. */
  readonly partial: boolean;
  /** In ascending order, merged; the whole object is one range (`end` is -1 for an empty object). */
  readonly ranges: readonly ByteRange[];
  /** Data bytes over all ranges. */
  readonly length: number;
  /** Where the first byte came from (for HEAD and empty bodies, where it is now). */
  readonly source: Source;
  /** The chunk's CRC32C when the body is exactly one whole chunk (computed at fill). */
  readonly crc32c?: number;
  /** Range i's bytes; range 0's first slice is fetched already. Not for HEAD or empty bodies. */
  slices(i: number): Promise<SliceStream>;
}

export interface ObjectReaderDeps {
  readonly readPath: ReadPath;
  readonly metrics: Metrics;
}

export class ObjectReader {
  constructor(private readonly d: ObjectReaderDeps) {}

  get chunkSize(): number {
    return this.d.readPath.chunkSize;
  }

  /**
   * Resolves, checks and starts one read. Throws CacheError (NOT_FOUND,
   * PRECONDITION_FAILED, the origin's failures) before anything is sent, so
   * every door can still answer with its own error format.
   */
  async open(r: ObjectReadRequest): Promise<ObjectRead> {
    const { name, signal } = r;
    // The one pinned-read rule (pinned.ts): a pin revalidates, then must match.
    const failed = r.resolveFailure;
    const info = await resolvePinned(
      failed ? { resolve: () => Promise.reject(failed) } : this.d.readPath,
      name,
      r.version,
      signal,
      singleStrongEtag(r.header('if-match')),
    );
    const pre = evaluatePreconditions(r.header, info);
    if (pre === 'precondition-failed') {
      throw new CacheError(
        'PRECONDITION_FAILED',
        `${formatName(name)}: precondition failed (ETag "${info.etag}")`,
      );
    }
    if (pre === 'not-modified') return { kind: 'not-modified', info };
    const range = ifRangeAllows(r.header, info)
      ? parseRange(r.range, info.size, r.maxRanges)
      : ({ kind: 'none' } as const);
    if (range.kind === 'unsatisfiable') return { kind: 'unsatisfiable', info };
    const ranges: readonly ByteRange[] =
      range.kind === 'ranges' ? range.ranges : [{ start: 0, end: info.size - 1 }];
    const length = info.size === 0 ? 0 : ranges.reduce((n, x) => n + x.end - x.start + 1, 0);
    const read = (i: number): Promise<SliceStream> => this.stream(info, ranges[i]!, signal);
    const content = { kind: 'content', info, partial: range.kind === 'ranges', ranges, length } as const;
    if (r.head || length === 0) {
      const source = length === 0 ? 'origin' : this.peek(info, ranges[0]!.start);
      return { ...content, source, slices: () => Promise.reject(noBody(info)) };
    }
    await r.admit?.(ranges);
    const first = await read(0);
    this.d.metrics.objectReads.inc({ door: r.door, source: first.first.source });
    const crc32c =
      first.first.crc32c !== undefined && first.first.data.length === length ? first.first.crc32c : undefined;
    let taken = false;
    return {
      ...content,
      source: first.first.source,
      ...(crc32c !== undefined ? { crc32c } : {}),
      slices: (i) => {
        if (i === 0 && !taken) {
          taken = true;
          return Promise.resolve(first);
        }
        return read(i);
      },
    };
  }

  private async stream(info: ObjectInfo, r: ByteRange, signal: AbortSignal): Promise<SliceStream> {
    const rest = this.d.readPath.read(info, r.start, r.end, signal);
    const n = await rest.next();
    if (n.done) throw new CacheError('INTERNAL', 'empty read for a non-empty range');
    return { first: n.value, rest };
  }

  private peek(info: ObjectInfo, offset: number): Source {
    return this.d.readPath.peekSource(info, Math.floor(offset / this.d.readPath.chunkSize));
  }
}

/** The tag of an If-Match naming exactly one strong entity tag (a pinned version), else undefined. */
function singleStrongEtag(ifMatch: string | undefined): string | undefined {
  const m = ifMatch === undefined ? null : /^\s*"([^"]*)"\s*$/.exec(ifMatch);
  return m?.[1];
}

function noBody(info: ObjectInfo): CacheError {
  return new CacheError('INTERNAL', `no body to read for ${formatName(info)} (HEAD or empty)`);
}
