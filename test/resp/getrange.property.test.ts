/**
 * GETRANGE, byte-exact: random objects and random (also negative and
 * out-of-range) offsets, read with ioredis' getrangeBuffer, compared with the
 * origin's bytes under Redis's rules — and, where redis-server is installed,
 * with what a real Redis holding the same bytes answers.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';
import { shouldRun } from './raw.js';
import { type RedisProcess, startRedisServer } from './redis-process.js';

/** Redis's rules, written out from the docs rather than shared with the server code. */
function expected(bytes: Buffer, start: number, end: number): Buffer {
  const n = bytes.length;
  if (start < 0 && end < 0 && start > end) return Buffer.alloc(0);
  const s = Math.max(0, start < 0 ? n + start : start);
  const e = Math.min(n - 1, Math.max(0, end < 0 ? n + end : end));
  return s > e || n === 0 ? Buffer.alloc(0) : bytes.subarray(s, e + 1);
}

const SIZES = [0, 1, 17, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 4321];
let h: Harness;
let ours: Redis;

beforeAll(async () => {
  h = await startHarness({ seed: Object.fromEntries(SIZES.map((n) => [`p/obj-${n}`, n])) });
  ours = new Redis({ port: h.port, host: '127.0.0.1' });
});
afterAll(async () => {
  ours?.disconnect();
  await h?.close();
});

const offset = (n: number) =>
  fc.oneof(
    fc.integer({ min: -2 * n - 10, max: 2 * n + 10 }),
    fc.constantFrom(0, -1, n - 1, n, CHUNK - 1, CHUNK, -CHUNK, 2 ** 40, -(2 ** 40)),
  );

describe('GETRANGE property', () => {
  it('matches the origin bytes under Redis rules', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...SIZES).chain((n) => fc.tuple(fc.constant(n), offset(n), offset(n))),
        async ([n, start, end]) => {
          const got = await ours.getrangeBuffer(`p/obj-${n}`, start, end);
          expect(got.equals(expected(h.objects.get(`p/obj-${n}`)!, start, end))).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  describe.skipIf(!shouldRun('redis-server'))('against a real redis-server holding the same bytes', () => {
    let redis: RedisProcess;
    let real: Redis;
    const value = randomBytes(2 * CHUNK + 77);

    beforeAll(async () => {
      redis = await startRedisServer();
      real = new Redis({ port: redis.port, host: '127.0.0.1' });
      await real.set('p/real', value);
      await h.put('p/real', value);
    });
    afterAll(async () => {
      real?.disconnect();
      await redis?.stop();
    });

    it('answers every range exactly as Redis does', async () => {
      await fc.assert(
        fc.asyncProperty(offset(value.length), offset(value.length), async (start, end) => {
          const [a, b] = await Promise.all([
            ours.getrangeBuffer('p/real', start, end),
            real.getrangeBuffer('p/real', start, end),
          ]);
          expect(a.equals(b)).toBe(true);
        }),
        { numRuns: 300 },
      );
    });
  });
});
