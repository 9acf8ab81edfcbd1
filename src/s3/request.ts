/**
 * An S3 request as the door and the signature check see it: the method, the
 * path exactly as received (SigV4 signs it as sent), the query as decoded
 * pairs, and every value of every header. Built from the raw request target,
 * never from a normalised URL.
 */
import type { IncomingMessage } from 'node:http';
import { S3Error } from './errors.js';

export interface S3Request {
  readonly method: string;
  /** The path as received, percent-encoded, without the query. */
  readonly path: string;
  /** Query parameters, decoded, in the order received. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Every value of a header (lower-case name), in the order received. */
  header(name: string): readonly string[];
}

/** Most query parameters one request may carry (S3 requests need a dozen at most). */
export const MAX_QUERY_PARAMS = 64;

export function s3Request(req: IncomingMessage, path: string, rawQuery: string): S3Request {
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
  };
}

/** The first value of a query parameter. */
export function param(r: S3Request, name: string): string | undefined {
  return r.query.find(([k]) => k === name)?.[1];
}

/** The first value of a header. */
export function header1(r: S3Request, name: string): string | undefined {
  return r.header(name)[0];
}

function parseQuery(raw: string): Array<[string, string]> {
  if (raw === '') return [];
  const parts = raw.split('&').filter((p) => p !== '');
  if (parts.length > MAX_QUERY_PARAMS) {
    throw new S3Error(400, 'InvalidArgument', `more than ${MAX_QUERY_PARAMS} query parameters`);
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
    throw new S3Error(
      400,
      'InvalidArgument',
      `malformed percent-encoding in the query: ${JSON.stringify(s.slice(0, 100))}`,
    );
  }
}
