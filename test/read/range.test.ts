import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRange } from '../../src/read/range.js';

const SIZE = 1000;
const p = (h: string | undefined, size = SIZE, max = 16) => parseRange(h, size, max);

describe('parseRange (RFC 9110 §14)', () => {
  it('bounded, open-ended and suffix ranges', () => {
    expect(p('bytes=0-0')).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 0 }] });
    expect(p('bytes=10-19')).toEqual({ kind: 'ranges', ranges: [{ start: 10, end: 19 }] });
    expect(p('bytes=990-')).toEqual({ kind: 'ranges', ranges: [{ start: 990, end: 999 }] });
    expect(p('bytes=-10')).toEqual({ kind: 'ranges', ranges: [{ start: 990, end: 999 }] });
    expect(p('bytes=-5000')).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 999 }] });
    expect(p('bytes=900-5000')).toEqual({ kind: 'ranges', ranges: [{ start: 900, end: 999 }] });
    expect(p('BYTES = 1-2')).toEqual({ kind: 'ranges', ranges: [{ start: 1, end: 2 }] });
  });

  it('no header or invalid syntax → ignored (200)', () => {
    for (const h of [
      undefined,
      '',
      'bytes',
      'bytes=',
      'bytes=-',
      'bytes=a-b',
      'items=0-1',
      'bytes=5-1',
      'bytes=1-2-3',
      'bytes=0x10-',
    ]) {
      expect(p(h), String(h)).toEqual({ kind: 'none' });
    }
    expect(p(`bytes=${'0-0,'.repeat(5000)}`)).toEqual({ kind: 'none' }); // header over the length bound
  });

  it('unsatisfiable: valid syntax but nothing overlaps', () => {
    expect(p('bytes=1000-')).toEqual({ kind: 'unsatisfiable' });
    expect(p('bytes=5000-6000')).toEqual({ kind: 'unsatisfiable' });
    expect(p('bytes=-0')).toEqual({ kind: 'unsatisfiable' });
    expect(p('bytes=0-0', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(p('bytes=-5', 0)).toEqual({ kind: 'unsatisfiable' });
  });

  it('huge numbers never overflow: >2^53 and 10,000 digits', () => {
    // 10,000 digits exceed the 8 KiB header bound: the header is ignored (200), not parsed.
    expect(p(`bytes=${'9'.repeat(10_000)}-`)).toEqual({ kind: 'none' });
    const huge = '9'.repeat(4000);
    expect(p(`bytes=${huge}-`)).toEqual({ kind: 'unsatisfiable' });
    expect(p(`bytes=0-${huge}`)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 999 }] });
    expect(p(`bytes=-${huge}`)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 999 }] });
    expect(p('bytes=9007199254740993-9007199254740999')).toEqual({ kind: 'unsatisfiable' });
    expect(p(`bytes=${'0'.repeat(500)}5-${'0'.repeat(500)}9`)).toEqual({
      kind: 'ranges',
      ranges: [{ start: 5, end: 9 }],
    });
  });

  it('overlapping and adjacent ranges are merged, sorted', () => {
    expect(p('bytes=50-99,0-9,10-19,5-12,200-')).toEqual({
      kind: 'ranges',
      ranges: [
        { start: 0, end: 19 },
        { start: 50, end: 99 },
        { start: 200, end: 999 },
      ],
    });
    expect(p('bytes=0-0,0-0')).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 0 }] });
  });

  it('a byte asked for by more than two ranges → the header is ignored (RFC 9110 §14.2)', () => {
    expect(p('bytes=0-0,0-0,0-0')).toEqual({ kind: 'none' });
    expect(p('bytes=0-99,50-60,55-56')).toEqual({ kind: 'none' });
    expect(p('bytes=0-99,50-60,61-70')).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 99 }] });
    // Issue 12: SGLang-style `bytes=0-0` sent 165 times is ignored (200 with the whole object).
    expect(p(`bytes=${Array(165).fill('0-0').join(',')}`)).toEqual({ kind: 'none' });
  });

  it('more distinct ranges than the limit → ignored (200); hundreds of ranges handled', () => {
    const many = Array.from({ length: 300 }, (_, i) => `${i * 3}-${i * 3}`).join(',');
    expect(p(`bytes=${many}`)).toEqual({ kind: 'none' });
    expect(p(`bytes=${many}`, SIZE, 1000)).toMatchObject({ kind: 'ranges' });
    // A list is not read past 2 × maxRanges specs: the header is ignored.
    const adjacent = (n: number) => Array.from({ length: n }, (_, i) => `${i}-${i}`).join(',');
    expect(p(`bytes=${adjacent(32)}`)).toEqual({ kind: 'ranges', ranges: [{ start: 0, end: 31 }] });
    expect(p(`bytes=${adjacent(33)}`)).toEqual({ kind: 'none' });
  });

  it('property: satisfiable results lie inside the object, sorted and disjoint', () => {
    const spec = fc.oneof(
      fc.tuple(fc.nat(3000), fc.nat(3000)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
      fc.nat(3000).map((a) => `${a}-`),
      fc.nat(3000).map((n) => `-${n}`),
    );
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 20 }), fc.nat(2000), (specs, size) => {
        const r = parseRange(`bytes=${specs.join(',')}`, size, 64);
        if (r.kind !== 'ranges') return;
        let prevEnd = -2;
        for (const x of r.ranges) {
          expect(x.start).toBeGreaterThanOrEqual(0);
          expect(x.end).toBeLessThan(size);
          expect(x.start).toBeLessThanOrEqual(x.end);
          expect(x.start).toBeGreaterThan(prevEnd + 1);
          prevEnd = x.end;
        }
      }),
    );
  });
});
