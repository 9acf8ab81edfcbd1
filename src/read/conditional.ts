/**
 * RFC 9110 §13 preconditions, evaluated in the order of §13.2.2 for a GET or
 * HEAD of an object whose current version has `etag` and `lastModified`.
 * Our ETags are strong (a version's bytes never change), so If-Match uses the
 * strong comparison and If-None-Match the weak one, as the RFC prescribes.
 */

export type Precondition = 'proceed' | 'precondition-failed' | 'not-modified';

export interface Validators {
  readonly etag: string; // unquoted
  readonly lastModified: Date;
}

type Headers = (name: string) => string | undefined;

export function evaluatePreconditions(header: Headers, v: Validators): Precondition {
  const ifMatch = header('if-match');
  if (ifMatch !== undefined) {
    if (!matches(ifMatch, v.etag, false)) return 'precondition-failed';
  } else {
    const ius = parseDate(header('if-unmodified-since'));
    if (ius !== undefined && seconds(v.lastModified) > ius) return 'precondition-failed';
  }
  const ifNoneMatch = header('if-none-match');
  if (ifNoneMatch !== undefined) {
    if (matches(ifNoneMatch, v.etag, true)) return 'not-modified';
  } else {
    const ims = parseDate(header('if-modified-since'));
    if (ims !== undefined && seconds(v.lastModified) <= ims) return 'not-modified';
  }
  return 'proceed';
}

/**
 * §13.1.5 If-Range: the Range applies only if the one validator it carries
 * still matches: a strong entity tag, compared strongly, or a date equal to
 * Last-Modified. Anything else (a weak tag, a list of tags, which If-Range's
 * grammar does not allow, an unparsable date) is a false condition: the
 * whole object is sent (200).
 */
export function ifRangeAllows(header: Headers, v: Validators): boolean {
  const ifRange = header('if-range');
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/'))
    return /^"[^"]*"$/.test(value) && value.slice(1, -1) === v.etag;
  const date = parseDate(value);
  return date !== undefined && date === seconds(v.lastModified);
}

export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

/** Does a list of entity tags (or "*") match `etag`? */
function matches(list: string, etag: string, weak: boolean): boolean {
  const trimmed = list.trim();
  if (trimmed === '*') return true;
  for (const item of trimmed.split(',')) {
    let tag = item.trim();
    const isWeak = tag.startsWith('W/');
    if (isWeak) {
      if (!weak) continue; // a weak tag never matches strongly
      tag = tag.slice(2);
    }
    if (tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"') && tag.slice(1, -1) === etag) return true;
  }
  return false;
}

function parseDate(value: string | undefined): number | undefined {
  if (value === undefined || value.length > 64) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}
