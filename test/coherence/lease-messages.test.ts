import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeLeaseAck,
  decodeLeaseAckResponse,
  decodeLeaseGrantRequest,
  decodeLeaseGrantResponse,
  decodeLeaseRenewRequest,
  decodeLeaseRenewResponse,
  decodeLeaseRevoke,
  decodeLeaseRevokeResponse,
  encodeLeaseAck,
  encodeLeaseAckResponse,
  encodeLeaseGrantRequest,
  encodeLeaseGrantResponse,
  encodeLeaseRenewRequest,
  encodeLeaseRevoke,
  encodeLeaseRevokeResponse,
  type LeaseAck,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRenewRequest,
  type LeaseRevoke,
  type LeaseVersion,
  MAX_ETAG_BYTES,
} from '../../src/coherence/lease-messages.js';
import { CoherenceFrame, forHolder } from '../../src/coherence/wire.js';
import { MetaError, MetaWriter } from '../../src/transport/codec.js';
import { FEATURE_CONTENT_MD5 } from '../../src/transport/protocol.js';

// ---------------------------------------------------------------- arbitraries

const container = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/),
  fc.constant(`c${'x'.repeat(254)}`),
);
const noSeparatorOrControl = (s: string) => !/[\u0000-\u001f\u007f/\\]/.test(s) && s !== '.' && s !== '..';
const segment = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }),
  )
  .filter(noSeparatorOrControl);
const key = fc.oneof(
  fc.array(segment, { minLength: 1, maxLength: 8 }).map((s) => s.join('/')),
  // A leading U+FEFF must survive (a BOM-stripping decoder would drop it).
  fc.constant('\uFEFFbom/x'),
  fc.constant('k'.repeat(1024)),
);
const etag = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s)),
  fc.constant('e'.repeat(MAX_ETAG_BYTES)),
);
const version: fc.Arbitrary<LeaseVersion> = fc.record({
  etag,
  size: fc.maxSafeNat(),
  lastModifiedMs: fc.integer({ min: -8.64e15, max: 8.64e15 }),
});
const incarnation = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const grantRequest: fc.Arbitrary<LeaseGrantRequest> = fc.record({ container, key });
const renewRequest: fc.Arbitrary<LeaseRenewRequest> = fc.record({ container, key, held: version });
const md5 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64'));
const grantResponse: fc.Arbitrary<LeaseGrantResponse> = fc.oneof(
  fc.record({
    status: fc.constant('ok' as const),
    version,
    termMs: fc.integer({ min: 1, max: 0xffffffff }),
    homeIncarnation: incarnation,
  }),
  // With the Content-MD5 field (the holder announced FEATURE_CONTENT_MD5): a digest, or null for none.
  fc.record({
    status: fc.constant('ok' as const),
    version,
    termMs: fc.integer({ min: 1, max: 0xffffffff }),
    homeIncarnation: incarnation,
    contentMd5: fc.oneof(md5, fc.constant(null)),
  }),
  fc.record({
    status: fc.constantFrom('notFound' as const, 'notHome' as const),
    homeIncarnation: incarnation,
  }),
);
const revoke: fc.Arbitrary<LeaseRevoke> = fc.record({
  container,
  key,
  homeIncarnation: incarnation,
  revokeId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});
const ack: fc.Arbitrary<LeaseAck> = fc.record({
  container,
  key,
  homeIncarnation: incarnation,
  revokeId: fc.oneof(fc.constant(0), fc.maxSafeNat()),
});

/** Every message with a non-empty meta, as one codec shape, so each property runs over all of them. */
interface Codec {
  readonly name: string;
  readonly arb: fc.Arbitrary<unknown>;
  readonly encode: (m: unknown) => Buffer;
  readonly decode: (b: Buffer) => unknown;
}
function codec<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  encode: (m: T) => Buffer,
  decode: (b: Buffer) => T,
): Codec {
  return {
    name,
    arb,
    encode: (m) => encode(m as T),
    decode,
  };
}
const codecs: Codec[] = [
  codec('LEASE_GRANT request', grantRequest, encodeLeaseGrantRequest, decodeLeaseGrantRequest),
  codec('LEASE_GRANT response', grantResponse, encodeLeaseGrantResponse, decodeLeaseGrantResponse),
  codec('LEASE_RENEW request', renewRequest, encodeLeaseRenewRequest, decodeLeaseRenewRequest),
  codec('LEASE_REVOKE request', revoke, encodeLeaseRevoke, decodeLeaseRevoke),
  codec('LEASE_ACK request', ack, encodeLeaseAck, decodeLeaseAck),
];

/** A decoder may refuse bytes only with MetaError; bytes it accepts must be exactly what its encoder writes. */
function rejectsOrCanonical(c: Codec, bytes: Buffer): void {
  let decoded: unknown;
  try {
    decoded = c.decode(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(MetaError);
    return;
  }
  expect(c.encode(decoded).equals(bytes)).toBe(true);
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// ---------------------------------------------------------------- fixed vectors

// Field by field, as docs/coherence.md ("Wire messages") lays them out. If one of these
// changes, the wire format changed: bump the protocol or the doc, never just the vector.
const NAME = '0600 6d6f64656c73' + '1400 6c6c616d612f37622e7361666574656e736f7273'; // 'models', 'llama/7b.safetensors'
const VERSION =
  '1100 3078384443304131423243334434453546' + // etag '0x8DC0A1B2C3D4E5F'
  '0040482303000000' + // size 13 476 839 424
  '00803890f6fc7842'; // lastModifiedMs 1 717 171 717 000 (f64)
const INCARNATION = 'cdab896745230100'; // 0x0123456789abcd
const name = { container: 'models', key: 'llama/7b.safetensors' };
const v: LeaseVersion = {
  etag: '0x8DC0A1B2C3D4E5F',
  size: 13_476_839_424,
  lastModifiedMs: 1_717_171_717_000,
};
const inc = 0x0123456789abcd;
/** md5('hello') */
const MD5 = 'XUFAKrxLKna5cZ2REBfFkg==';

const vectors: { what: string; c: Codec; message: unknown; bytes: string }[] = [
  { what: 'LEASE_GRANT request', c: codecs[0]!, message: name, bytes: NAME },
  {
    what: 'LEASE_GRANT response, ok',
    c: codecs[1]!,
    message: { status: 'ok', version: v, termMs: 30_000, homeIncarnation: inc },
    bytes: `00 ${VERSION} 30750000 ${INCARNATION}`,
  },
  {
    what: 'LEASE_GRANT response, ok, with the Content-MD5 field (FEATURE_CONTENT_MD5)',
    c: codecs[1]!,
    message: { status: 'ok', version: v, termMs: 30_000, homeIncarnation: inc, contentMd5: MD5 },
    bytes: `00 ${VERSION} 30750000 ${INCARNATION} 10 ${Buffer.from(MD5, 'base64').toString('hex')}`,
  },
  {
    what: 'LEASE_GRANT response, ok, with an empty Content-MD5 field (the origin keeps none)',
    c: codecs[1]!,
    message: { status: 'ok', version: v, termMs: 30_000, homeIncarnation: inc, contentMd5: null },
    bytes: `00 ${VERSION} 30750000 ${INCARNATION} 00`,
  },
  {
    what: 'LEASE_GRANT response, not found',
    c: codecs[1]!,
    message: { status: 'notFound', homeIncarnation: inc },
    bytes: `01 0000 0000000000000000 0000000000000000 00000000 ${INCARNATION}`,
  },
  {
    what: 'LEASE_GRANT response, not home',
    c: codecs[1]!,
    message: { status: 'notHome', homeIncarnation: inc },
    bytes: `02 0000 0000000000000000 0000000000000000 00000000 ${INCARNATION}`,
  },
  { what: 'LEASE_RENEW request', c: codecs[2]!, message: { ...name, held: v }, bytes: `${NAME} ${VERSION}` },
  {
    what: 'LEASE_REVOKE request',
    c: codecs[3]!,
    message: { ...name, homeIncarnation: inc, revokeId: 7 },
    bytes: `${NAME} ${INCARNATION} 0700000000000000`,
  },
  {
    what: 'LEASE_ACK request',
    c: codecs[4]!,
    message: { ...name, homeIncarnation: inc, revokeId: 7 },
    bytes: `${NAME} ${INCARNATION} 0700000000000000`,
  },
  {
    what: 'LEASE_ACK request, early release',
    c: codecs[4]!,
    message: { ...name, homeIncarnation: inc, revokeId: 0 },
    bytes: `${NAME} ${INCARNATION} 0000000000000000`,
  },
];

describe('lease message meta codecs', () => {
  it('use the frame types docs/wire-protocol.md reserves', () => {
    expect([
      CoherenceFrame.LEASE_GRANT,
      CoherenceFrame.LEASE_RENEW,
      CoherenceFrame.LEASE_REVOKE,
      CoherenceFrame.LEASE_ACK,
    ]).toEqual([0x20, 0x21, 0x22, 0x23]);
  });

  for (const t of vectors) {
    it(`encodes and decodes a fixed ${t.what}`, () => {
      expect(t.c.encode(t.message).toString('hex')).toBe(hex(t.bytes).toString('hex'));
      expect(t.c.decode(hex(t.bytes))).toEqual(t.message);
    });
  }

  it('answers LEASE_RENEW exactly like LEASE_GRANT', () => {
    const bytes = hex(vectors[1]!.bytes);
    expect(decodeLeaseRenewResponse(bytes)).toEqual(decodeLeaseGrantResponse(bytes));
  });

  it('has empty LEASE_REVOKE and LEASE_ACK responses, and refuses any byte in them', () => {
    expect(encodeLeaseRevokeResponse().length).toBe(0);
    expect(encodeLeaseAckResponse().length).toBe(0);
    expect(() => decodeLeaseRevokeResponse(Buffer.alloc(0))).not.toThrow();
    expect(() => decodeLeaseAckResponse(Buffer.alloc(0))).not.toThrow();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (b) => {
        expect(() => decodeLeaseRevokeResponse(Buffer.from(b))).toThrow(MetaError);
        expect(() => decodeLeaseAckResponse(Buffer.from(b))).toThrow(MetaError);
      }),
    );
  });

  for (const c of codecs) {
    describe(c.name, () => {
      it('round-trips every field', () => {
        fc.assert(
          fc.property(c.arb, (m) => {
            const bytes = c.encode(m);
            expect(c.decode(bytes)).toEqual(m);
            // And the bytes are canonical: encoding what was decoded gives them back.
            expect(c.encode(c.decode(bytes)).equals(bytes)).toBe(true);
          }),
          { numRuns: 300 },
        );
      });

      it('rejects every truncation with MetaError', () => {
        fc.assert(
          fc.property(c.arb, (m) => {
            const bytes = c.encode(m);
            // Without its optional last field (Content-MD5), a lease answer is the v1 one: valid.
            const { contentMd5, ...v1 } = m as { contentMd5?: unknown };
            const v1Length = contentMd5 === undefined ? -1 : c.encode(v1).length;
            for (let cut = 0; cut < bytes.length; cut++) {
              if (cut === v1Length) expect(c.decode(bytes.subarray(0, cut))).toEqual(v1);
              else expect(() => c.decode(bytes.subarray(0, cut))).toThrow(MetaError);
            }
          }),
          { numRuns: 50 },
        );
      });

      it('rejects trailing bytes with MetaError', () => {
        fc.assert(
          fc.property(c.arb, fc.uint8Array({ minLength: 1, maxLength: 16 }), (m, extra) => {
            // One 0 byte after an ok lease answer without it is the (empty) Content-MD5 field.
            const ok = (m as { status?: string; contentMd5?: unknown }).status === 'ok';
            fc.pre(!(ok && (m as { contentMd5?: unknown }).contentMd5 === undefined && extra[0] === 0));
            const bytes = Buffer.concat([c.encode(m), extra]);
            // There, the extra bytes are read as that field, and refused as one.
            const field = ok && (m as { contentMd5?: unknown }).contentMd5 === undefined;
            expect(() => c.decode(bytes)).toThrow(
              field ? /trailing|Content-MD5 field|truncated/ : /trailing/,
            );
            expect(() => c.decode(bytes)).toThrow(MetaError);
          }),
        );
      });

      it('refuses garbage with MetaError only, and accepts only canonical bytes', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 300 }), (b) => rejectsOrCanonical(c, Buffer.from(b))),
          { numRuns: 500 },
        );
        // Random bytes mostly fail at the first length; corrupting valid messages reaches every field.
        fc.assert(
          fc.property(
            c.arb,
            fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
            (m, edits) => {
              const bytes = Buffer.from(c.encode(m));
              for (const [at, value] of edits) bytes[at % bytes.length] = value;
              rejectsOrCanonical(c, bytes);
            },
          ),
          { numRuns: 500 },
        );
      });
    });
  }
});

describe('lease message bounds', () => {
  const okGrant = { status: 'ok', version: v, termMs: 30_000, homeIncarnation: inc } as const;
  const w = () => new MetaWriter();

  it('refuses bad names on both sides', () => {
    const bad = [
      { container: '', key: 'k' },
      { container: '.hidden', key: 'k' },
      { container: 'a/b', key: 'k' },
      { container: 'c'.repeat(256), key: 'k' },
      { container: 'c', key: '' },
      { container: 'c', key: '../etc/passwd' },
      { container: 'c', key: 'a//b' },
      { container: 'c', key: '/abs' },
      { container: 'c', key: 'a\\b' },
      { container: 'c', key: 'nul\u0000' },
      { container: 'c', key: 'k'.repeat(1025) },
      { container: 'c', key: 'lone\uD800' },
    ];
    for (const n of bad) {
      expect(() => encodeLeaseGrantRequest(n)).toThrow(MetaError);
      expect(() => encodeLeaseRevoke({ ...n, homeIncarnation: 1, revokeId: 1 })).toThrow(MetaError);
      // The decoder sees the same name written without the encoder's checks (a lone surrogate cannot be
      // written: UTF-8 has no bytes for it, the writer puts U+FFFD; bad UTF-8 has its own test).
      if (!n.key.includes('\uD800')) {
        expect(() => decodeLeaseGrantRequest(w().str(n.container).str(n.key).bytes())).toThrow(MetaError);
      }
    }
  });

  it('refuses strings that are not UTF-8', () => {
    for (const bytes of ['ff', 'c0af', 'eda080', 'e282']) {
      const raw = hex(bytes);
      const meta = w().str('c').u16(raw.length).raw(raw).bytes();
      expect(() => decodeLeaseGrantRequest(meta)).toThrow(/UTF-8/);
    }
  });

  it('refuses out-of-range versions on both sides', () => {
    const bad: LeaseVersion[] = [
      { ...v, etag: '' },
      { ...v, etag: 'e'.repeat(MAX_ETAG_BYTES + 1) },
      { ...v, etag: 'a\nb' },
      { ...v, size: -1 },
      { ...v, size: 1.5 },
      { ...v, size: 2 ** 53 },
      { ...v, lastModifiedMs: Number.NaN },
      { ...v, lastModifiedMs: Number.POSITIVE_INFINITY },
      { ...v, lastModifiedMs: 0.5 },
      { ...v, lastModifiedMs: 8.64e15 + 1 },
      { ...v, lastModifiedMs: -8.64e15 - 1 },
    ];
    for (const held of bad) {
      expect(() => encodeLeaseRenewRequest({ ...name, held })).toThrow(MetaError);
      expect(() => encodeLeaseGrantResponse({ ...okGrant, version: held })).toThrow(MetaError);
      if (held.size >= 0 && held.size <= Number.MAX_SAFE_INTEGER && Number.isInteger(held.size)) {
        const meta = w()
          .str(name.container)
          .str(name.key)
          .str(held.etag)
          .u64(held.size)
          .f64(held.lastModifiedMs);
        expect(() => decodeLeaseRenewRequest(meta.bytes())).toThrow(MetaError);
      }
    }
    // A size past 2^53 on the wire: the reader refuses it.
    const big = w().str(name.container).str(name.key).str('e').bytes();
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(2n ** 53n);
    expect(() => decodeLeaseRenewRequest(Buffer.concat([big, size, Buffer.alloc(8)]))).toThrow(MetaError);
  });

  it('refuses an unknown status, a zero or fractional term, and a zero incarnation', () => {
    const ok = hex(vectors[1]!.bytes);
    for (const status of [3, 0x80, 0xff]) {
      const b = Buffer.from(ok);
      b[0] = status;
      expect(() => decodeLeaseGrantResponse(b)).toThrow(/lease status/);
    }
    const termAt = ok.length - 8 - 4;
    const zeroTerm = Buffer.from(ok);
    zeroTerm.writeUInt32LE(0, termAt);
    expect(() => decodeLeaseGrantResponse(zeroTerm)).toThrow(/termMs/);
    const zeroInc = Buffer.from(ok);
    zeroInc.writeBigUInt64LE(0n, ok.length - 8);
    expect(() => decodeLeaseGrantResponse(zeroInc)).toThrow(/homeIncarnation/);

    for (const termMs of [0, -1, 1.5, 2 ** 32]) {
      expect(() => encodeLeaseGrantResponse({ ...okGrant, termMs })).toThrow(MetaError);
    }
    for (const homeIncarnation of [0, -1, 1.5, 2 ** 53]) {
      expect(() => encodeLeaseGrantResponse({ ...okGrant, homeIncarnation })).toThrow(MetaError);
      expect(() => encodeLeaseGrantResponse({ status: 'notFound', homeIncarnation })).toThrow(MetaError);
      expect(() => encodeLeaseRevoke({ ...name, homeIncarnation, revokeId: 1 })).toThrow(MetaError);
      expect(() => encodeLeaseAck({ ...name, homeIncarnation, revokeId: 1 })).toThrow(MetaError);
    }
    const bogus = { status: 'maybe', homeIncarnation: 1 } as unknown as LeaseGrantResponse;
    expect(() => encodeLeaseGrantResponse(bogus)).toThrow(MetaError);
  });

  it('refuses a version or a term in a not-found or not-home answer', () => {
    for (const status of [1, 2]) {
      const fields = [
        w().str('e').u64(0).f64(0).u32(0),
        w().str('').u64(1).f64(0).u32(0),
        w().str('').u64(0).f64(1).u32(0),
        w().str('').u64(0).f64(-0).u32(0),
        w().str('').u64(0).f64(0).u32(1),
      ];
      for (const f of fields) {
        const meta = Buffer.concat([Uint8Array.of(status), f.u64(inc).bytes()]);
        expect(() => decodeLeaseGrantResponse(meta)).toThrow(/empty version and termMs 0/);
      }
    }
  });

  it('refuses a Content-MD5 field that is not 0 or 16 bytes, or one on an answer without a lease', () => {
    const ok = hex(vectors[1]!.bytes);
    for (const n of [1, 15, 17, 255]) {
      const meta = Buffer.concat([ok, Uint8Array.of(n), Buffer.alloc(n)]);
      expect(() => decodeLeaseGrantResponse(meta)).toThrow(/Content-MD5 field of/);
    }
    // The field is the last one: anything after it is trailing.
    expect(() => decodeLeaseGrantResponse(Buffer.concat([ok, Uint8Array.of(0, 0)]))).toThrow(/trailing/);
    const notFound = hex(vectors.find((t) => t.what.endsWith('not found'))!.bytes);
    expect(() => decodeLeaseGrantResponse(Buffer.concat([notFound, Uint8Array.of(0)]))).toThrow(/trailing/);
    for (const contentMd5 of ['', 'AAAA', Buffer.alloc(17).toString('base64'), `${MD5.slice(0, -2)}?=`]) {
      expect(() => encodeLeaseGrantResponse({ ...okGrant, contentMd5 })).toThrow(/Content-MD5/);
    }
  });

  it('sends the Content-MD5 field only to a holder that announced FEATURE_CONTENT_MD5', () => {
    const withMd5 = { ...okGrant, contentMd5: MD5 };
    // An older holder decodes the v1 layout: the answer it gets is byte for byte the one before the field.
    expect(encodeLeaseGrantResponse(forHolder(withMd5, 0)).toString('hex')).toBe(
      vectors[1]!.bytes.replace(/\s+/g, ''),
    );
    expect(
      decodeLeaseGrantResponse(encodeLeaseGrantResponse(forHolder(withMd5, FEATURE_CONTENT_MD5))),
    ).toEqual(withMd5);
    const none = decodeLeaseGrantResponse(encodeLeaseGrantResponse(forHolder(okGrant, FEATURE_CONTENT_MD5)));
    expect(none).toEqual({ ...okGrant, contentMd5: null });
    const notFound = { status: 'notFound', homeIncarnation: inc } as const;
    expect(forHolder(notFound, FEATURE_CONTENT_MD5)).toBe(notFound);
  });

  it('refuses revokeId 0 in LEASE_REVOKE (it means release, in LEASE_ACK only)', () => {
    expect(() => encodeLeaseRevoke({ ...name, homeIncarnation: inc, revokeId: 0 })).toThrow(/revokeId/);
    expect(() =>
      decodeLeaseRevoke(hex(vectors.find((t) => t.what.endsWith('early release'))!.bytes)),
    ).toThrow(/revokeId/);
    expect(decodeLeaseAck(hex(vectors.find((t) => t.what.endsWith('early release'))!.bytes)).revokeId).toBe(
      0,
    );
    for (const revokeId of [-1, 0.5, 2 ** 53]) {
      expect(() => encodeLeaseAck({ ...name, homeIncarnation: inc, revokeId })).toThrow(MetaError);
    }
  });
});
