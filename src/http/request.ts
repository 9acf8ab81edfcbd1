/**
 * Pieces every HTTP door needs from a Node request/response: a request as a
 * signature check sees it (the path exactly as received, the query as
 * decoded pairs, every value of every header), and a signal for a client
 * that left.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheError } from '../errors/cache-error.js';
import { ClientGone } from './stream.js';

export interface RawRequest {
  readonly method: string;
  /** The path as received, percent-encoded, without the query. */
  readonly path: string;
  /** Query parameters, decoded, in the order received. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Every value of a header (lower-case name), in the order received. */
  header(name: string): readonly string[];
  /** Every header name received (lower-case). */
  headerNames(): readonly string[];
}

/** Most query parameters one request may carry (the doors' requests need a dozen at most). */
export const MAX_QUERY_PARAMS = 64;

export function rawRequest(req: IncomingMessage, path: string, rawQuery: string): RawRequest {
  const headers = new Map<string, string[]>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const list = headers.get(name);
    if (list) list.push(raw[i + 1]!);
    else headers.set(name, [raw[i + 1]!]);
  }
  return {
    method: req.method ?? 'GET',
    path,
    query: parseQuery(rawQuery),
    header: (name) => headers.get(name) ?? [],
    headerNames: () => [...headers.keys()],
  };
}

/** The first value of a query parameter. */
export function param(r: RawRequest, name: string): string | undefined {
  return r.query.find(([k]) => k === name)?.[1];
}

/** The first value of a header. */
export function header1(r: RawRequest, name: string): string | undefined {
  return r.header(name)[0];
}

function parseQuery(raw: string): Array<[string, string]> {
  if (raw === '') return [];
  const parts = raw.split('&').filter((p) => p !== '');
  if (parts.length > MAX_QUERY_PARAMS) {
    throw new CacheError('BAD_REQUEST', `more than ${MAX_QUERY_PARAMS} query parameters`);
  }
  return parts.map((p) => {
    const eq = p.indexOf('=');
    const [k, v] = eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
    return [decode(k), decode(v)];
  });
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new CacheError(
      'BAD_REQUEST',
      `malformed percent-encoding in the query: ${JSON.stringify(s.slice(0, 100))}`,
    );
  }
}

/**
 * A signal that fires only when the client leaves before the response is
 * complete: a completed response also emits 'close', and building an abort
 * reason per request was ~15% of a 64 KiB hit.
 */
export function clientAbort(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort(new ClientGone());
  });
  return ac.signal;
}
