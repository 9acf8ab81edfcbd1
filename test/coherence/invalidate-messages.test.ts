/**
 * INVALIDATE (0x24) meta: fixed byte vectors (so the layout cannot drift
 * unnoticed), round trips, and strictness: every truncation, trailing bytes,
 * unknown kinds/outcomes and bad names are MetaErrors (a broken peer).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeInvalidate,
  decodeInvalidateAnswer,
  encodeInvalidate,
  encodeInvalidateAnswer,
  type InvalidateAnswer,
} from '../../src/coherence/invalidate-messages.js';
import type { InvalidationTarget } from '../../src/coherence/invalidation.js';
import { MetaError, MetaWriter } from '../../src/transport/codec.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const T = new Date(1_700_000_000_000).toISOString();
// f64 little-endian of 1_700_000_000_000
const T_F64 = '00008056febc7842';
const f64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return b.toString('hex');
};

const requests: [string, InvalidationTarget, string][] = [
  ['a key', { container: 'c', key: 'k' }, '0100 63  0100 6b  00'],
  ['a nested key', { container: 'models', key: 'm/a.bin' }, '0600 6d6f64656c73  0700 6d2f612e62696e  00'],
  ['a prefix', { container: 'c', prefix: 'm/' }, '0100 63  0200 6d2f  01'],
  ["the '' prefix (the whole container)", { container: 'c', prefix: '' }, '0100 63  0000  01'],
];

const zeroVersion = `0000 ${'00'.repeat(8)} ${'00'.repeat(8)}`;
const answers: [string, InvalidateAnswer, string][] = [
  [
    'bound',
    { version: { etag: 'e1', size: 5, lastModified: T }, names: 1, acked: 2, expired: 3 },
    `00  0200 6531  0500000000000000  ${T_F64}  01000000 02000000 03000000`,
  ],
  [
    'deleted',
    { version: null, names: 1, acked: 0, expired: 4 },
    `01  ${zeroVersion}  01000000 00000000 04000000`,
  ],
  ['prefix', { names: 7, acked: 5, expired: 0 }, `02  ${zeroVersion}  07000000 05000000 00000000`],
];

describe('INVALIDATE request', () => {
  for (const [what, target, bytes] of requests) {
    it(`encodes ${what} as fixed bytes and decodes them back`, () => {
      expect(encodeInvalidate(target).toString('hex')).toBe(hex(bytes).toString('hex'));
      expect(decodeInvalidate(hex(bytes))).toEqual(target);
    });

    it(`every truncation of ${what} and a trailing byte throw MetaError`, () => {
      const full = hex(bytes);
      for (let n = 0; n < full.length; n++) {
        expect(() => decodeInvalidate(full.subarray(0, n)), `${n} of ${full.length} bytes`).toThrow(
          MetaError,
        );
      }
      expect(() => decodeInvalidate(Buffer.concat([full, Buffer.of(0)]))).toThrow(MetaError);
    });
  }

  it('refuses an unknown kind', () => {
    for (const kind of [2, 0x7f, 0xff]) {
      expect(() => decodeInvalidate(hex(`0100 63 0100 6b ${kind.toString(16).padStart(2, '0')}`))).toThrow(
        /unknown INVALIDATE kind/,
      );
    }
  });

  const badKeys = ['../x', 'a/../b', 'a/./b', '..', '/abs', 'a\\b', 'a//b', 'nul\u0000', 'x'.repeat(1025)];
  it('refuses traversal and malformed names, on both sides', () => {
    const raw = (container: string, rest: string, kind: number) =>
      new MetaWriter().str(container).str(rest).raw(Uint8Array.of(kind)).bytes();
    for (const key of badKeys) {
      expect(() => encodeInvalidate({ container: 'c', key }), key).toThrow(MetaError);
      expect(() => decodeInvalidate(raw('c', key, 0)), key).toThrow(MetaError);
      expect(() => encodeInvalidate({ container: 'c', prefix: key }), key).toThrow(MetaError);
      expect(() => decodeInvalidate(raw('c', key, 1)), key).toThrow(MetaError);
    }
    for (const container of ['', '..', '.c', 'a/b', 'c d', 'x'.repeat(256)]) {
      expect(() => encodeInvalidate({ container, key: 'k' }), container).toThrow(MetaError);
      expect(() => decodeInvalidate(raw(container, 'k', 0)), container).toThrow(MetaError);
    }
    // An empty key is no name; an empty prefix is the whole container. 'm/' is a prefix, not a key.
    expect(() => encodeInvalidate({ container: 'c', key: '' })).toThrow(MetaError);
    expect(() => decodeInvalidate(raw('c', '', 0))).toThrow(MetaError);
    expect(() => encodeInvalidate({ container: 'c', key: 'm/' })).toThrow(MetaError);
    expect(decodeInvalidate(raw('c', 'm/', 1))).toEqual({ container: 'c', prefix: 'm/' });
  });

  it('round-trips any valid key or prefix', () => {
    const segment = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
      .filter((s) => !/[\u0000-\u001f\u007f/\\]/.test(s) && s !== '.' && s !== '..');
    const container = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/);
    const key = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join('/'));
    const target: fc.Arbitrary<InvalidationTarget> = fc.oneof(
      fc.record({ container, key }),
      fc.record({
        container,
        prefix: fc.oneof(
          fc.constant(''),
          key,
          key.map((k) => `${k}/`),
        ),
      }),
    );
    fc.assert(
      fc.property(target, (t) => {
        expect(decodeInvalidate(encodeInvalidate(t))).toEqual(t);
      }),
    );
  });
});

describe('INVALIDATE answer', () => {
  for (const [what, answer, bytes] of answers) {
    it(`encodes ${what} as fixed bytes and decodes them back`, () => {
      expect(encodeInvalidateAnswer(answer).toString('hex')).toBe(hex(bytes).toString('hex'));
      expect(decodeInvalidateAnswer(hex(bytes))).toEqual(answer);
    });

    it(`every truncation of ${what} and a trailing byte throw MetaError`, () => {
      const full = hex(bytes);
      for (let n = 0; n < full.length; n++) {
        expect(() => decodeInvalidateAnswer(full.subarray(0, n)), `${n} of ${full.length}`).toThrow(
          MetaError,
        );
      }
      expect(() => decodeInvalidateAnswer(Buffer.concat([full, Buffer.of(0)]))).toThrow(MetaError);
    });
  }

  it('round-trips bound versions and counts', () => {
    const answer: fc.Arbitrary<InvalidateAnswer> = fc.record({
      version: fc.oneof(
        fc.constant(null),
        fc.constant(undefined),
        fc.record({
          etag: fc.string({ minLength: 1, maxLength: 40 }),
          size: fc.maxSafeNat(),
          lastModified: fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms).toISOString()),
        }),
      ),
      names: fc.nat({ max: 0xffffffff }),
      acked: fc.nat({ max: 0xffffffff }),
      expired: fc.nat({ max: 0xffffffff }),
    });
    fc.assert(
      fc.property(answer, (a) => {
        const { version, ...counts } = a;
        const want = version === undefined ? counts : a;
        expect(decodeInvalidateAnswer(encodeInvalidateAnswer(a))).toEqual(want);
      }),
    );
  });

  it('refuses an unknown outcome', () => {
    for (const outcome of ['03', '7f', 'ff']) {
      expect(() => decodeInvalidateAnswer(hex(`${outcome} ${zeroVersion} ${'00'.repeat(12)}`))).toThrow(
        /unknown INVALIDATE outcome/,
      );
    }
  });

  it('refuses a version where none is bound, and a bound one without etag or time', () => {
    const counts = '01000000 00000000 00000000';
    for (const outcome of ['01', '02']) {
      expect(() => decodeInvalidateAnswer(hex(`${outcome} 0100 65 ${'00'.repeat(16)} ${counts}`))).toThrow(
        MetaError,
      );
      expect(() =>
        decodeInvalidateAnswer(hex(`${outcome} 0000 0100000000000000 ${'00'.repeat(8)} ${counts}`)),
      ).toThrow(MetaError);
      expect(() =>
        decodeInvalidateAnswer(hex(`${outcome} 0000 ${'00'.repeat(8)} ${T_F64} ${counts}`)),
      ).toThrow(MetaError);
    }
    expect(() => decodeInvalidateAnswer(hex(`00 0000 0500000000000000 ${T_F64} ${counts}`))).toThrow(
      MetaError,
    );
    expect(() =>
      decodeInvalidateAnswer(hex(`00 0200 6531 0500000000000000 ${f64(Number.NaN)} ${counts}`)),
    ).toThrow(MetaError);
    expect(() =>
      decodeInvalidateAnswer(hex(`00 0200 6531 0500000000000000 ${f64(Number.POSITIVE_INFINITY)} ${counts}`)),
    ).toThrow(MetaError);
  });

  it('the encoder refuses a bad bound version and bad counts, and caps counts at u32', () => {
    const v = { etag: 'e1', size: 5, lastModified: T };
    for (const bad of [
      { ...v, etag: '' },
      { ...v, size: -1 },
      { ...v, size: 1.5 },
      { ...v, size: 2 ** 53 },
      { ...v, lastModified: 'yesterday' },
    ]) {
      expect(() => encodeInvalidateAnswer({ version: bad, names: 1, acked: 0, expired: 0 })).toThrow(
        MetaError,
      );
    }
    for (const n of [-1, 0.5, Number.NaN]) {
      expect(() => encodeInvalidateAnswer({ names: n, acked: 0, expired: 0 })).toThrow(MetaError);
      expect(() => encodeInvalidateAnswer({ names: 0, acked: n, expired: 0 })).toThrow(MetaError);
      expect(() => encodeInvalidateAnswer({ names: 0, acked: 0, expired: n })).toThrow(MetaError);
    }
    const capped = decodeInvalidateAnswer(encodeInvalidateAnswer({ names: 2 ** 40, acked: 1, expired: 0 }));
    expect(capped).toEqual({ names: 0xffffffff, acked: 1, expired: 0 });
  });

  // Regression: a finite time outside a Date's range (|ms| > 8.64e15) is a MetaError like
  // every other refusal, not a RangeError from toISOString.
  it('a bound time outside the Date range is a MetaError', () => {
    const meta = hex(`00 0200 6531 0500000000000000 ${f64(1e16)} 01000000 00000000 00000000`);
    expect(() => decodeInvalidateAnswer(meta)).toThrow(MetaError);
  });
});
