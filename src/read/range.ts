/**
 * RFC 9110 §14 byte ranges. A Range header is parsed against the selected
 * representation's size into one of:
 *   - none: no header, or one that is syntactically invalid (ignored → 200,
 *     as §14.2 requires), or one we choose to ignore (→ 200): it lists more
 *     than 2 × maxRanges ranges, some byte is asked for by more than two of
 *     its ranges (§14.2: "common characteristics of a client error or a
 *     deliberate denial-of-service attack"), or more than maxRanges remain
 *     after merging;
 *   - unsatisfiable: valid syntax, but no range overlaps the object (→ 416
 *     with `Content-Range: bytes *\/size`);
 *   - ranges: satisfiable ranges, clamped to the object, overlapping and
 *     adjacent ones merged, in ascending order.
 * Positions can be any number of digits (we never overflow: anything past
 * 2^53 is treated as "beyond any object"), and the header's length is bounded.
 */

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

export type RangeResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'ranges'; readonly ranges: readonly ByteRange[] };

/** Longest Range header we parse; longer ones are ignored (→ 200). */
export const MAX_RANGE_HEADER_LENGTH = 8192;

const NONE: RangeResult = { kind: 'none' };
const SPEC_RE = /^(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number, maxRanges: number): RangeResult {
  if (header === undefined || header.length > MAX_RANGE_HEADER_LENGTH) return NONE;
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return NONE;
  const specs = header.slice(eq + 1).split(',');
  const ranges: ByteRange[] = [];
  let syntaxOk = 0;
  for (const raw of specs) {
    const spec = raw.trim();
    if (spec === '') continue; // §5.6.1: empty list elements are tolerated
    const m = SPEC_RE.exec(spec);
    if (!m) return NONE;
    const [, first, last] = m as unknown as [string, string, string];
    if (first === '' && last === '') return NONE;
    syntaxOk++;
    if (syntaxOk > 2 * maxRanges) return NONE; // hostile lists: stop reading early
    if (first === '') {
      // suffix range: the last N bytes
      const n = toNumber(last);
      if (n === 0 || size === 0) continue;
      ranges.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = toNumber(first);
    const end = last === '' ? Number.POSITIVE_INFINITY : toNumber(last);
    if (end < start) return NONE; // last-pos < first-pos: invalid syntax per §14.1.1
    if (start >= size) continue; // unsatisfiable on its own
    ranges.push({ start, end: Math.min(end, size - 1) });
  }
  if (syntaxOk === 0) return NONE;
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  if (maxOverlap(ranges) > 2) return NONE;
  const merged = merge(ranges);
  if (merged.length > maxRanges) return NONE;
  return { kind: 'ranges', ranges: merged };
}

/** Digits → number; anything past 2^53 becomes +Infinity (beyond any object). */
function toNumber(digits: string): number {
  const trimmed = digits.replace(/^0+(?=\d)/, '');
  if (trimmed.length > 16) return Number.POSITIVE_INFINITY;
  const n = Number(trimmed);
  return Number.isSafeInteger(n) ? n : Number.POSITIVE_INFINITY;
}

/** The most ranges any one byte lies in. */
function maxOverlap(ranges: readonly ByteRange[]): number {
  // +1 where a range starts, -1 just past its end; at one position ends come first.
  const events = ranges.flatMap((r) => [
    [r.start, 1],
    [r.end + 1, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let depth = 0;
  let max = 0;
  for (const [, d] of events) {
    depth += d!;
    max = Math.max(max, depth);
  }
  return max;
}

/** Sorts and merges overlapping or adjacent ranges (§14.2 lets a server coalesce). */
function merge(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const prev = out.at(-1);
    if (prev && r.start <= prev.end + 1) {
      out[out.length - 1] = { start: prev.start, end: Math.max(prev.end, r.end) };
    } else {
      out.push(r);
    }
  }
  return out;
}

export function contentRange(r: ByteRange, size: number): string {
  return `bytes ${r.start}-${r.end}/${size}`;
}
